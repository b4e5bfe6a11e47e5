<?php

declare(strict_types=1);

namespace Herald\Http;

/** An HTTP answer: its status and body. */
final class HttpResponse
{
    public function __construct(public readonly int $status, public readonly string $body)
    {
    }
}
