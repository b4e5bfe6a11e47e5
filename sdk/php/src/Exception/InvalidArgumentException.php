<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * A call the SDK refuses before sending anything: an empty action, a target
 * naming nobody, a value JSON cannot carry.
 */
final class InvalidArgumentException extends \InvalidArgumentException implements HeraldException
{
}
