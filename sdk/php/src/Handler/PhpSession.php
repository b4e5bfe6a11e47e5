<?php

declare(strict_types=1);

namespace Herald\Handler;

/**
 * Reads the app's own PHP session for a `$connect` request: the session its
 * upgrade's cookie names (`PHPSESSID` unless the app renamed it). The browser
 * sends that cookie to Herald as it does to the app when both are on the
 * same host (a reverse proxy in front of both, or `localhost` in
 * development), and Herald forwards it.
 *
 * The handler runs in the same PHP app, with the same session settings
 * (save handler and path), so `session_start()` reads the very session the
 * login page wrote. It is read and closed at once (`read_and_close`), so it
 * is not locked beyond the read and never changed; with
 * `use_strict_mode`, an id PHP does not know is not taken for a new session.
 */
final class PhpSession
{
    /**
     * The session's data, or null when the request carries no session
     * cookie, an id PHP would not take, or an id of no session.
     *
     * @return array<string, mixed>|null
     */
    public static function read(Request $request, ?string $sessionName = null): ?array
    {
        $id = $request->cookie($sessionName ?? session_name());
        // PHP's own alphabet for session ids, at its longest.
        if ($id === null || !preg_match('/^[A-Za-z0-9,-]{1,256}$/D', $id)) {
            return null;
        }
        if (session_status() === PHP_SESSION_ACTIVE) {
            throw new \LogicException('close the PHP session before reading another one');
        }
        session_id($id);
        $started = session_start([
            'read_and_close' => true,
            'use_strict_mode' => true,
            // The answer goes to Herald, not to a browser: no cookie, no cache headers.
            'use_cookies' => false,
            'cache_limiter' => '',
        ]);
        // Strict mode replaces an id it does not know with a new one.
        $known = $started && session_id() === $id;
        $data = $known ? $_SESSION : null;
        $_SESSION = [];
        session_id('');
        return $known && $data !== [] ? $data : null;
    }
}
