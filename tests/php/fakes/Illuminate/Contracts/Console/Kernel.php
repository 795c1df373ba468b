<?php

namespace Illuminate\Contracts\Console;

interface Kernel
{
    public function bootstrap();
}
