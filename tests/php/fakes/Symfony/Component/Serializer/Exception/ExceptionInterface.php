<?php

namespace Symfony\Component\Serializer\Exception;

interface ExceptionInterface extends \Throwable
{
}
