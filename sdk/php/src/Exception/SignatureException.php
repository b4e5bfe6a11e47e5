<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * A request claiming to come from Herald is refused: its `Herald-Signature`
 * is missing, malformed or wrong, or its `Herald-Timestamp` is missing or
 * too far from now (a stale or replayed request). The message says which.
 */
final class SignatureException extends \RuntimeException implements HeraldException
{
}
