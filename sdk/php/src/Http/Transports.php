<?php

declare(strict_types=1);

namespace Herald\Http;

use Herald\Exception\InvalidArgumentException;

/**
 * The `transport` option every HTTP client of the SDK takes
 * ({@see \Herald\Client}, {@see \Herald\Pusher\Pusher}).
 */
final class Transports
{
    /**
     * `'curl'`, `'streams'`, your own {@see Transport}, or null: curl when
     * ext-curl is loaded, PHP's streams otherwise.
     */
    public static function choose(mixed $choice): Transport
    {
        return match (true) {
            $choice instanceof Transport => $choice,
            $choice === 'curl' => extension_loaded('curl')
                ? new CurlTransport()
                : throw new InvalidArgumentException('transport "curl" needs ext-curl, which is not loaded'),
            $choice === 'streams' => new StreamTransport(),
            $choice === null => extension_loaded('curl') ? new CurlTransport() : new StreamTransport(),
            default => throw new InvalidArgumentException('transport must be "curl", "streams" or a Transport'),
        };
    }
}
