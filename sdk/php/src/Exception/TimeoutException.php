<?php

declare(strict_types=1);

namespace Herald\Exception;

/** No answer within the configured timeout. */
final class TimeoutException extends ConnectionException
{
}
