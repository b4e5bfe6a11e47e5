<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\ApiException;
use Herald\Exception\ConnectionException;
use Herald\Exception\InvalidArgumentException;
use Herald\Http\Transport;
use Herald\Http\Transports;

/**
 * Herald's backend HTTP API (`/api/*` on a router, or on `herald dev`'s
 * port): publish to clients, move them between groups, disconnect them, ask
 * who is online.
 *
 * ```php
 * $herald = new Herald\Client('http://herald-router:8081', getenv('HERALD_API_KEY'));
 * $herald->publishToUsers(['ann'], 'news', ['text' => 'hello']);
 * ```
 *
 * Every call throws an {@see ApiException} (with the status and Herald's
 * message) when Herald refuses it, a {@see ConnectionException} (or its
 * {@see Exception\TimeoutException}) when Herald cannot be reached in time,
 * and an {@see InvalidArgumentException} for a call it refuses before
 * sending anything. Inside a handler's function, calls carry the action's
 * trace context ({@see TraceContext}).
 */
final class Client
{
    use PublishShortcuts;

    private const USER_AGENT = 'herald-php/0.1';

    private readonly string $baseUrl;
    private readonly Transport $transport;
    private readonly float $timeout;
    private readonly float $connectTimeout;

    /**
     * @param string $baseUrl the router's (or `herald dev`'s) URL, e.g. `http://127.0.0.1:8081`
     * @param string $apiKey `HERALD_API_KEY`
     * @param array{timeout?: float, connect_timeout?: float, transport?: 'curl'|'streams'|Transport} $options
     *        `timeout`: seconds for a whole call (default 5); `connect_timeout`: seconds to connect
     *        (default 2); `transport`: ext-curl when loaded, else PHP streams, unless given
     */
    public function __construct(
        string $baseUrl,
        #[\SensitiveParameter] private readonly string $apiKey,
        array $options = [],
    ) {
        if (!preg_match('#^https?://[^/]#', $baseUrl)) {
            throw new InvalidArgumentException("the API URL must start with http:// or https://, not \"{$baseUrl}\"");
        }
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->timeout = (float) ($options['timeout'] ?? 5.0);
        $this->connectTimeout = (float) ($options['connect_timeout'] ?? 2.0);
        if ($this->timeout <= 0 || $this->connectTimeout <= 0) {
            throw new InvalidArgumentException('timeouts must be positive');
        }
        $this->transport = Transports::choose($options['transport'] ?? null);
    }

    /**
     * Publishes `{"action", "details"}` to everyone `$to` names, except the
     * connection `$excludeConn` (say, the one whose action caused it).
     *
     * @return int the number of subjects published to
     */
    public function publish(Target $to, string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        Action::checkPublish($to, $action);
        $body = ['to' => $to->toArray(), 'action' => $action, 'details' => $details];
        if ($excludeConn !== null) {
            $body['exclude_conn'] = $excludeConn;
        }
        return $this->post('/api/publish', $body)['subjects'];
    }

    /**
     * Adds every connection of `$users`, and the connections `$conns`, to
     * `$group`. Applied by the edges asynchronously.
     *
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     * @return int the number of subjects the operation was sent to
     */
    public function joinGroup(string $group, iterable $users = [], iterable $conns = []): int
    {
        return $this->post('/api/groups/join', self::members($group, $users, $conns))['subjects'];
    }

    /**
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     */
    public function leaveGroup(string $group, iterable $users = [], iterable $conns = []): int
    {
        return $this->post('/api/groups/leave', self::members($group, $users, $conns))['subjects'];
    }

    /**
     * Closes every connection of `$users` and the connections `$conns` with
     * close code `$code` (1000, or 3000 to 4999) and `$reason`.
     *
     * @param iterable<string|int> $users
     * @param iterable<string> $conns
     */
    public function disconnect(iterable $users = [], iterable $conns = [], int $code = 4000, string $reason = ''): int
    {
        $target = Target::of(users: $users, conns: $conns);
        if ($target->isEmpty()) {
            throw new InvalidArgumentException('name at least one user or connection to disconnect');
        }
        $body = ['users' => $target->users, 'conns' => $target->conns, 'code' => $code, 'reason' => $reason];
        return $this->post('/api/disconnect', $body)['subjects'];
    }

    /** Whether `$user` is connected anywhere, and with how many connections. */
    public function userPresence(string|int $user): UserPresence
    {
        $answer = $this->call('GET', '/api/presence/users/' . rawurlencode((string) $user), null);
        return new UserPresence((bool) $answer['online'], (int) $answer['conns']);
    }

    /** How many connections `$group` has, anywhere, and of which users. */
    public function groupPresence(string $group): GroupPresence
    {
        $answer = $this->call('GET', '/api/presence/groups/' . rawurlencode($group), null);
        return new GroupPresence((int) $answer['conns'], array_map('strval', $answer['users']));
    }

    private static function members(string $group, iterable $users, iterable $conns): array
    {
        $target = Target::of(users: $users, conns: $conns);
        if ($target->isEmpty()) {
            throw new InvalidArgumentException("name at least one user or connection to join or leave \"{$group}\"");
        }
        return ['group' => $group, 'users' => $target->users, 'conns' => $target->conns];
    }

    private function post(string $path, array $body): array
    {
        return $this->call('POST', $path, Json::encode($body));
    }

    /** One call: its JSON answer, or the exception for its failure. */
    private function call(string $method, string $path, ?string $body): array
    {
        $headers = [
            'Authorization' => 'Bearer ' . $this->apiKey,
            'Accept' => 'application/json',
            'User-Agent' => self::USER_AGENT,
        ];
        if ($body !== null) {
            $headers['Content-Type'] = 'application/json';
        }
        // Inside a handler, the action's trace goes on through this call.
        $headers += TraceContext::currentHeaders();
        $url = $this->baseUrl . $path;
        $response = $this->transport->send($method, $url, $headers, $body, $this->timeout, $this->connectTimeout);
        if ($response->status < 200 || $response->status > 299) {
            throw ApiException::fromAnswer($response->status, $response->body);
        }
        $answer = json_decode($response->body, true);
        if (!is_array($answer)) {
            throw new ConnectionException("{$method} {$url} answered {$response->status} with no JSON object: "
                . substr($response->body, 0, 200));
        }
        return $answer;
    }
}
