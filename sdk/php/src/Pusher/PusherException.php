<?php

declare(strict_types=1);

namespace Herald\Pusher;

use Herald\Exception\HeraldException;

/**
 * Refused before anything was sent (a bad channel name, socket id or user
 * data; data JSON cannot carry), or a webhook whose signature is wrong; as
 * pusher-php-server's `Pusher\PusherException`.
 */
class PusherException extends \RuntimeException implements HeraldException
{
}
