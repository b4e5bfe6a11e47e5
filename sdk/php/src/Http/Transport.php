<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\ConnectionException;
use Herald\Exception\TimeoutException;

/**
 * Sends one HTTP request. {@see CurlTransport} when ext-curl is loaded,
 * {@see StreamTransport} (PHP's own http:// streams) otherwise; or your own.
 */
interface Transport
{
    /**
     * @param array<string, string> $headers
     * @param float $timeout seconds for the whole exchange
     * @param float $connectTimeout seconds to connect
     * @throws TimeoutException when no answer came in time
     * @throws ConnectionException when the server could not be reached or the exchange broke
     */
    public function send(
        string $method,
        string $url,
        array $headers,
        ?string $body,
        float $timeout,
        float $connectTimeout,
    ): HttpResponse;
}
