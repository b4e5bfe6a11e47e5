<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * Herald (or NATS) could not be reached, or the connection broke before an
 * answer came. Nothing says whether the call took effect.
 */
class ConnectionException extends \RuntimeException implements HeraldException
{
}
