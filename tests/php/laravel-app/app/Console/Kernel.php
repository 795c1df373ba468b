<?php

namespace App\Console;

use Illuminate\Foundation\Console\Kernel as ConsoleKernel;

// Laravel's console kernel; bootstrap() is what the runner and artisan run before anything.
class Kernel extends ConsoleKernel
{
}
