<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 503: Herald cannot reach NATS or the edges right now; the call may be retried. */
final class UnavailableException extends ApiException
{
}
