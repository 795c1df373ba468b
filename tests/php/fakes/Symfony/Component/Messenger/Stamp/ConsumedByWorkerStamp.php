<?php

/*
 * This file is part of the Symfony package.
 *
 * (c) Fabien Potencier <fabien@symfony.com>
 *
 * For the full copyright and license information, please view the LICENSE
 * file that was distributed with this source code.
 */

namespace Symfony\Component\Messenger\Stamp;

/**
 * A marker that this message was consumed by a worker process.
 */
class ConsumedByWorkerStamp implements NonSendableStampInterface
{
}
