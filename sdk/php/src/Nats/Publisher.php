<?php

declare(strict_types=1);

namespace Herald\Nats;

use Herald\Action;
use Herald\Exception\InvalidArgumentException;
use Herald\Exception\NatsException;
use Herald\Json;
use Herald\PublishShortcuts;
use Herald\Subjects;
use Herald\Target;
use Herald\TraceContext;

/**
 * Publishes to Herald's clients straight over NATS, for a PHP backend inside
 * the cluster: no router in between. It speaks the core NATS protocol over a
 * socket (`CONNECT`, `PUB`, `HPUB`, `PING`/`PONG`), with user/password or
 * token authentication and TLS (when the server asks for it or the URL is
 * `tls://`; needs ext-openssl).
 *
 * ```php
 * $nats = new Herald\Nats\Publisher('nats://nats:4222');
 * $nats->publishToUsers(['ann'], 'news', ['text' => 'hello']);
 * $nats->flush(); // optional: a round trip that confirms the server has it all
 * ```
 *
 * It connects at the first call and keeps the connection for the object's
 * life (a long-running worker shares one). NATS core is at-most-once: a
 * publish is written to the socket, and {@see flush()} is the way to know
 * the server took it. A connection found closed before a publish is opened
 * again; a publish that fails throws a {@see NatsException} and is not
 * retried.
 */
final class Publisher
{
    use PublishShortcuts;

    private const VERSION = '0.1.0';
    private const DEFAULT_PORT = 4222;
    /** Longest protocol line read from the server (an `INFO` with a big cluster). */
    private const MAX_LINE = 65536;

    /** @var list<array{url: string, scheme: string, host: string, port: int, user: ?string, pass: ?string}> */
    private readonly array $servers;
    private readonly Subjects $subjects;
    private readonly float $timeout;

    /** @var resource|null the connection, once open */
    private $socket = null;
    /** The server connected to, for messages. */
    private string $connectedTo = '';
    /** Largest message the server takes (its `INFO`'s `max_payload`). */
    private int $maxPayload = 1048576;
    /** Whether the server takes headers (`HPUB`). */
    private bool $serverHeaders = false;

    /**
     * @param string|list<string> $servers NATS URLs (`nats://`, `tls://`, with `user:pass@` or `token@`),
     *        a list or a comma-separated string, tried in order
     * @param array{user?: string, pass?: string, token?: string, name?: string, timeout?: float,
     *              tls?: array<string, mixed>, subject_prefix?: string} $options
     *        `user`/`pass` or `token`: credentials for servers whose URL has none; `name`: the connection's
     *        name in NATS monitoring (default `herald-php`); `timeout`: seconds to connect and for each
     *        answer (default 2); `tls`: PHP `ssl` context options, e.g. `['cafile' => '/etc/ca.pem']`;
     *        `subject_prefix`: `HERALD_SUBJECT_PREFIX` (default `herald`)
     */
    public function __construct(string|array $servers = 'nats://127.0.0.1:4222', private readonly array $options = [])
    {
        $urls = is_string($servers) ? explode(',', $servers) : $servers;
        $parsed = [];
        foreach ($urls as $url) {
            if (trim($url) !== '') {
                $parsed[] = self::parseUrl(trim($url));
            }
        }
        if ($parsed === []) {
            throw new InvalidArgumentException('give at least one NATS server URL');
        }
        $this->servers = $parsed;
        $this->subjects = new Subjects($options['subject_prefix'] ?? 'herald');
        $this->timeout = (float) ($options['timeout'] ?? 2.0);
        if ($this->timeout <= 0) {
            throw new InvalidArgumentException('the timeout must be positive');
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * Publishes `{"action", "details"}` to everyone `$to` names, except the
     * connection `$excludeConn` (sent as the `Herald-Exclude-Conn` header),
     * stamped with its publish time (the `Herald-Published-At` header).
     *
     * @return int the number of subjects published to
     */
    public function publish(Target $to, string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        Action::checkPublish($to, $action);
        $subjects = $this->subjects->forTarget($to);
        // The edges measure publish → delivery lag from it (PROTOCOL.md 5.27).
        $headers = ['Herald-Published-At' => self::publishedAt()];
        if ($excludeConn !== null) {
            $headers['Herald-Exclude-Conn'] = Subjects::connId($excludeConn);
        }
        // Inside a handler, the action's trace goes on through this publish.
        $headers += TraceContext::currentHeaders();
        $frame = Json::encode(['action' => $action, 'details' => $details]);
        foreach ($subjects as $subject) {
            $this->publishRaw($subject, $frame, $headers);
        }
        return count($subjects);
    }

    /**
     * Adds every connection of `$users`, and the connections `$conns`, to
     * `$group` (control operations; the edges apply them asynchronously).
     *
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     * @return int the number of subjects the operation was sent to
     */
    public function joinGroup(string $group, iterable $users = [], iterable $conns = []): int
    {
        return $this->control(['op' => 'join', 'group' => $group], $users, $conns);
    }

    /**
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     */
    public function leaveGroup(string $group, iterable $users = [], iterable $conns = []): int
    {
        return $this->control(['op' => 'leave', 'group' => $group], $users, $conns);
    }

    /**
     * Closes every connection of `$users` and the connections `$conns` with
     * close code `$code` and `$reason`.
     *
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     */
    public function disconnect(iterable $users = [], iterable $conns = [], int $code = 4000, string $reason = ''): int
    {
        return $this->control(['op' => 'disconnect', 'code' => $code, 'reason' => $reason], $users, $conns);
    }

    /**
     * Publishes `$payload` to `$subject`, with NATS headers when given.
     *
     * @param array<string, string> $headers
     */
    public function publishRaw(string $subject, string $payload, array $headers = []): void
    {
        if (!preg_match('/^[^\s.*>]+(\.[^\s.*>]+)*$/D', $subject)) {
            throw new InvalidArgumentException("\"{$subject}\" is not a subject to publish to");
        }
        if ($headers === []) {
            $this->connection();
            $this->checkSize(strlen($payload));
            $this->write("PUB {$subject} " . strlen($payload) . "\r\n{$payload}\r\n");
            return;
        }
        $block = "NATS/1.0\r\n";
        foreach ($headers as $name => $value) {
            if (!preg_match('/^[!-9;-~]+$/D', (string) $name) || preg_match('/[\r\n]/', $value)) {
                throw new InvalidArgumentException("bad NATS header \"{$name}\"");
            }
            $block .= "{$name}: {$value}\r\n";
        }
        $block .= "\r\n";
        $this->connection();
        if (!$this->serverHeaders) {
            throw new NatsException("the NATS server at {$this->connectedTo} does not take headers");
        }
        $total = strlen($block) + strlen($payload);
        $this->checkSize($total);
        $this->write("HPUB {$subject} " . strlen($block) . " {$total}\r\n{$block}{$payload}\r\n");
    }

    /**
     * A round trip to the server: once it returns, the server has every
     * message published before it, and any error it had is thrown.
     */
    public function flush(): void
    {
        $this->connection();
        $this->write("PING\r\n");
        $this->readUntilPong();
    }

    /** Closes the connection; the next call opens a new one. */
    public function close(): void
    {
        if (is_resource($this->socket)) {
            fclose($this->socket);
        }
        $this->socket = null;
    }

    /** Now, by this machine's clock, as Unix time in microseconds: exact, from microtime()'s string. */
    private static function publishedAt(): string
    {
        [$fraction, $seconds] = explode(' ', microtime());
        return $seconds . substr($fraction, 2, 6);
    }

    private function control(array $op, iterable $users, iterable $conns): int
    {
        $target = Target::of(users: $users, conns: $conns);
        if ($target->isEmpty()) {
            throw new InvalidArgumentException('name at least one user or connection');
        }
        $subjects = [
            ...array_map($this->subjects->controlUser(...), $target->users),
            ...array_map($this->subjects->controlConn(...), $target->conns),
        ];
        $payload = Json::encode($op);
        foreach ($subjects as $subject) {
            $this->publishRaw($subject, $payload);
        }
        return count($subjects);
    }

    private function checkSize(int $size): void
    {
        if ($size > $this->maxPayload) {
            throw new NatsException(
                "the message is {$size} bytes, over the {$this->maxPayload} bytes the NATS server at "
                . "{$this->connectedTo} takes (max_payload)",
            );
        }
    }

    /**
     * The open connection: the one there is, after taking in what the server
     * sent meanwhile (its `PING`s, an `-ERR`), or a new one if it was closed.
     *
     * @return resource
     */
    private function connection()
    {
        if ($this->socket !== null && !$this->takeServerInput()) {
            $this->close();
        }
        if ($this->socket === null) {
            $this->connect();
        }
        return $this->socket;
    }

    /** Opens a connection to the first server that takes it. */
    private function connect(): void
    {
        $failures = [];
        foreach ($this->servers as $server) {
            try {
                $this->open($server);
                return;
            } catch (NatsException $e) {
                $this->close();
                $failures[] = $e->getMessage();
            }
        }
        throw new NatsException('cannot connect to NATS: ' . implode('; ', $failures));
    }

    /** @param array{url: string, scheme: string, host: string, port: int, user: ?string, pass: ?string} $server */
    private function open(array $server): void
    {
        $url = $server['url'];
        $tls = array_merge(['peer_name' => $server['host']], $this->options['tls'] ?? []);
        $context = stream_context_create(['ssl' => $tls]);
        $address = 'tcp://' . (str_contains($server['host'], ':') ? "[{$server['host']}]" : $server['host'])
            . ":{$server['port']}";
        $timeout = $this->timeout;
        $errstr = '';
        [$socket, $warning] = self::quietly(static function () use ($address, $timeout, $context, &$errstr) {
            return stream_socket_client($address, $errno, $errstr, $timeout, STREAM_CLIENT_CONNECT, $context);
        });
        if ($socket === false) {
            $why = $errstr !== '' ? $errstr : ($warning ?? 'connection failed');
            throw new NatsException("{$url}: {$why}");
        }
        $this->socket = $socket;
        $this->connectedTo = $url;
        $seconds = (int) $this->timeout;
        stream_set_timeout($socket, $seconds, (int) (($this->timeout - $seconds) * 1e6));
        $line = $this->readLine();
        if (!str_starts_with($line, 'INFO ')) {
            throw new NatsException("{$url}: not a NATS server (it said \"" . substr($line, 0, 60) . '")');
        }
        $info = $this->info($line);
        $tlsRequired = ($info['tls_required'] ?? false) === true;
        if ($server['scheme'] === 'tls' || $tlsRequired) {
            if (!$tlsRequired && ($info['tls_available'] ?? false) !== true) {
                throw new NatsException("{$url}: the server does not offer TLS");
            }
            if (!extension_loaded('openssl')) {
                throw new NatsException("{$url}: TLS needs ext-openssl, which is not loaded");
            }
            [$upgraded, $warning] = self::quietly(
                fn () => stream_socket_enable_crypto($socket, true, STREAM_CRYPTO_METHOD_TLS_CLIENT),
            );
            if ($upgraded !== true) {
                throw new NatsException("{$url}: TLS handshake failed: " . ($warning ?? 'unknown error'));
            }
        }
        $connect = [
            'verbose' => false,
            'pedantic' => false,
            'tls_required' => $server['scheme'] === 'tls' || $tlsRequired,
            'name' => $this->options['name'] ?? 'herald-php',
            'lang' => 'php',
            'version' => self::VERSION,
            'protocol' => 1,
            'headers' => true,
            'no_responders' => false,
        ];
        // Credentials in the URL win: nats://user:pass@host, or nats://token@host.
        [$user, $pass, $token] = $server['user'] === null
            ? [$this->options['user'] ?? null, $this->options['pass'] ?? null, $this->options['token'] ?? null]
            : ($server['pass'] === null ? [null, null, $server['user']] : [$server['user'], $server['pass'], null]);
        if ($user !== null) {
            $connect['user'] = $user;
            $connect['pass'] = $pass ?? '';
        } elseif ($token !== null) {
            $connect['auth_token'] = $token;
        }
        $this->write('CONNECT ' . Json::encode($connect) . "\r\nPING\r\n");
        $this->readUntilPong();
    }

    /** Reads server lines until `PONG`, answering `PING`s; an `-ERR` throws. */
    private function readUntilPong(): void
    {
        while (true) {
            $line = $this->readLine();
            if ($line === 'PONG') {
                return;
            }
            $this->handle($line);
        }
    }

    /**
     * Takes in whatever the server sent, without waiting. False when the
     * server has closed the connection.
     */
    private function takeServerInput(): bool
    {
        while (true) {
            $meta = stream_get_meta_data($this->socket);
            if ($meta['eof']) {
                return false;
            }
            if ($meta['unread_bytes'] === 0) {
                $read = [$this->socket];
                $write = $except = null;
                [$ready] = self::quietly(fn () => stream_select($read, $write, $except, 0, 0));
                if ($ready === false) {
                    return false;
                }
                if ($ready === 0) {
                    return true;
                }
            }
            [$line] = self::quietly(fn () => stream_get_line($this->socket, self::MAX_LINE, "\r\n"));
            if ($line === false) {
                // Readable with nothing to read: the server closed it.
                return false;
            }
            $this->handle($line);
        }
    }

    /** Acts on a line the server sent unasked. */
    private function handle(string $line): void
    {
        if ($line === 'PING') {
            $this->write("PONG\r\n");
        } elseif (str_starts_with($line, '-ERR')) {
            $this->close();
            throw new NatsException("the NATS server at {$this->connectedTo} said: " . trim(substr($line, 4)));
        } elseif (str_starts_with($line, 'INFO ')) {
            $this->info($line);
        }
        // +OK, and anything else, needs nothing.
    }

    /** Reads an `INFO` line and keeps what matters of it. */
    private function info(string $line): array
    {
        $info = json_decode(substr($line, 5), true);
        if (!is_array($info)) {
            throw new NatsException("{$this->connectedTo}: the server's INFO is not JSON");
        }
        $this->maxPayload = (int) ($info['max_payload'] ?? $this->maxPayload);
        $this->serverHeaders = ($info['headers'] ?? false) === true;
        return $info;
    }

    private function readLine(): string
    {
        [$line] = self::quietly(fn () => stream_get_line($this->socket, self::MAX_LINE, "\r\n"));
        if ($line === false) {
            $meta = stream_get_meta_data($this->socket);
            $why = $meta['timed_out'] ? "no answer within {$this->timeout} s" : 'the server closed the connection';
            $url = $this->connectedTo;
            $this->close();
            throw new NatsException("{$url}: {$why}");
        }
        return $line;
    }

    private function write(string $data): void
    {
        while ($data !== '') {
            [$written, $warning] = self::quietly(fn () => fwrite($this->socket, $data));
            if ($written === false || $written === 0) {
                $url = $this->connectedTo;
                $this->close();
                throw new NatsException("{$url}: connection lost: " . ($warning ?? 'write failed'));
            }
            $data = substr($data, $written);
        }
    }

    /**
     * Runs `$io`, turning the warnings PHP's stream functions emit into a
     * value: `[result, last warning or null]`.
     *
     * @return array{0: mixed, 1: ?string}
     */
    private static function quietly(callable $io): array
    {
        $warning = null;
        set_error_handler(static function (int $type, string $message) use (&$warning): bool {
            $warning = preg_replace('/^[a-z_]+\(\): /', '', $message);
            return true;
        });
        try {
            return [$io(), $warning];
        } finally {
            restore_error_handler();
        }
    }

    /** @return array{url: string, scheme: string, host: string, port: int, user: ?string, pass: ?string} */
    private static function parseUrl(string $url): array
    {
        $withScheme = str_contains($url, '://') ? $url : "nats://{$url}";
        $parts = parse_url($withScheme);
        $scheme = strtolower($parts['scheme'] ?? '');
        if ($parts === false || !isset($parts['host']) || !in_array($scheme, ['nats', 'tls'], true)) {
            throw new InvalidArgumentException("\"{$url}\" is not a NATS URL (nats://host:port or tls://host:port)");
        }
        $user = isset($parts['user']) ? rawurldecode($parts['user']) : null;
        $pass = isset($parts['pass']) ? rawurldecode($parts['pass']) : null;
        $host = trim($parts['host'], '[]');
        $port = $parts['port'] ?? self::DEFAULT_PORT;
        $shown = "{$scheme}://" . (str_contains($host, ':') ? "[{$host}]" : $host) . ":{$port}";
        return ['url' => $shown, 'scheme' => $scheme, 'host' => $host, 'port' => $port, 'user' => $user, 'pass' => $pass];
    }
}
