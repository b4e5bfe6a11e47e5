<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 413: the request body is over the router's limit (HERALD_MAX_API_BODY_BYTES). */
final class PayloadTooLargeException extends ApiException
{
}
