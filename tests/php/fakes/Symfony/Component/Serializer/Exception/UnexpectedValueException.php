<?php

namespace Symfony\Component\Serializer\Exception;

class UnexpectedValueException extends \UnexpectedValueException implements ExceptionInterface
{
}
