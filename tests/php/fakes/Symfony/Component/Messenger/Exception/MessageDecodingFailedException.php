<?php

/*
 * This file is part of the Symfony package.
 *
 * (c) Fabien Potencier <fabien@symfony.com>
 *
 * For the full copyright and license information, please view the LICENSE
 * file that was distributed with this source code.
 */

namespace Symfony\Component\Messenger\Exception;

/**
 * Thrown when a message cannot be decoded in a serializer.
 */
class MessageDecodingFailedException extends InvalidArgumentException
{
}
