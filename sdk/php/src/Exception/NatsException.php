<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * NATS cannot take a publish: no server reachable, refused credentials, a
 * payload over the server's `max_payload`, an `-ERR` from the server, or a
 * connection lost.
 */
final class NatsException extends ConnectionException
{
}
