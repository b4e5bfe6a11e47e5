<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\ConnectionException;
use Herald\Exception\TimeoutException;

/**
 * HTTP with ext-curl. One handle is kept for the transport's life, so
 * several calls from one PHP request share a kept-alive connection.
 */
final class CurlTransport implements Transport
{
    private ?\CurlHandle $handle = null;

    public function send(
        string $method,
        string $url,
        array $headers,
        ?string $body,
        float $timeout,
        float $connectTimeout,
    ): HttpResponse {
        $this->handle ??= curl_init();
        $handle = $this->handle;
        curl_reset($handle);
        $lines = [];
        foreach ($headers as $name => $value) {
            $lines[] = "{$name}: {$value}";
        }
        // No "Expect: 100-continue" round trip for larger bodies.
        $lines[] = 'Expect:';
        curl_setopt_array($handle, [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_TIMEOUT_MS => (int) ceil($timeout * 1000),
            CURLOPT_CONNECTTIMEOUT_MS => (int) ceil($connectTimeout * 1000),
            CURLOPT_NOSIGNAL => true,
        ]);
        if ($body !== null) {
            curl_setopt($handle, CURLOPT_POSTFIELDS, $body);
        }
        $answer = curl_exec($handle);
        if ($answer === false) {
            $errno = curl_errno($handle);
            $message = "cannot {$method} {$url}: " . curl_error($handle);
            throw $errno === CURLE_OPERATION_TIMEDOUT
                ? new TimeoutException($message, $errno)
                : new ConnectionException($message, $errno);
        }
        return new HttpResponse(curl_getinfo($handle, CURLINFO_RESPONSE_CODE), (string) $answer);
    }
}
