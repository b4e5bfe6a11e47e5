<?php

declare(strict_types=1);

namespace Herald\Exception;

/** HTTP 400: the request was malformed or named nobody (Herald says what). */
final class BadRequestException extends ApiException
{
}
