<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\ConnectionException;
use Herald\Exception\TimeoutException;

/**
 * HTTP with PHP's own `http://` and `https://` streams: no extension needed
 * (https needs ext-openssl). One connection per call.
 */
final class StreamTransport implements Transport
{
    public function send(
        string $method,
        string $url,
        array $headers,
        ?string $body,
        float $timeout,
        float $connectTimeout,
    ): HttpResponse {
        $lines = ['Connection: close'];
        foreach ($headers as $name => $value) {
            $lines[] = "{$name}: {$value}";
        }
        $context = stream_context_create([
            'http' => [
                'method' => $method,
                'header' => implode("\r\n", $lines),
                'content' => $body ?? '',
                // The streams have one timeout, for connecting and for each
                // read; `$connectTimeout` has no stream of its own.
                'timeout' => $timeout,
                'ignore_errors' => true,
                'follow_location' => 0,
                'protocol_version' => 1.1,
            ],
        ]);
        $started = microtime(true);
        $warning = null;
        set_error_handler(static function (int $type, string $message) use (&$warning): bool {
            $warning = $message;
            return true;
        });
        try {
            $stream = fopen($url, 'rb', false, $context);
            $answer = $stream === false ? false : stream_get_contents($stream);
            $meta = $stream === false ? [] : stream_get_meta_data($stream);
        } finally {
            restore_error_handler();
            if (isset($stream) && is_resource($stream)) {
                fclose($stream);
            }
        }
        // A read that timed out fails the request with a warning that does
        // not say so ("HTTP request failed!"); the clock does.
        $elapsed = microtime(true) - $started;
        $timedOut = ($meta['timed_out'] ?? false) || ($answer === false && $elapsed >= $timeout)
            || ($warning !== null && stripos($warning, 'timed out') !== false);
        if ($timedOut) {
            throw new TimeoutException("cannot {$method} {$url}: no answer within {$timeout} s");
        }
        if ($stream === false || $answer === false) {
            $why = $warning !== null ? preg_replace('/^.*?: /', '', $warning) : 'the connection failed';
            throw new ConnectionException("cannot {$method} {$url}: {$why}");
        }
        $status = self::status($meta['wrapper_data'] ?? []);
        if ($status === null) {
            throw new ConnectionException("cannot {$method} {$url}: the answer has no HTTP status line");
        }
        return new HttpResponse($status, $answer);
    }

    /**
     * The status of the last status line (after any 1xx).
     *
     * @param array<int, string> $headers
     */
    private static function status(array $headers): ?int
    {
        $status = null;
        foreach ($headers as $line) {
            if (preg_match('#^HTTP/\S+\s+(\d{3})#', $line, $match)) {
                $status = (int) $match[1];
            }
        }
        return $status;
    }
}
