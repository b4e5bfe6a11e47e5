<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * Every exception the SDK throws implements this: `catch (HeraldException $e)`
 * catches them all.
 */
interface HeraldException extends \Throwable
{
}
