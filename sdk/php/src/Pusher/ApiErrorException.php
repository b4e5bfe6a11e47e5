<?php

declare(strict_types=1);

namespace Herald\Pusher;

/**
 * Herald answered an error, or could not be reached; as pusher-php-server's
 * `Pusher\ApiErrorException`: the message is Herald's answer as it came
 * (`Invalid signature: ...`, `Timestamp expired: ...`), the code its HTTP
 * status (0 when Herald could not be reached; the cause is then
 * `getPrevious()`).
 */
final class ApiErrorException extends PusherException
{
    public function getStatus(): int
    {
        return $this->getCode();
    }
}
