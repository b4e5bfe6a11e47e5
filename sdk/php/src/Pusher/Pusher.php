<?php

declare(strict_types=1);

namespace Herald\Pusher;

use Herald\Exception\ConnectionException;
use Herald\Http\Transport;
use Herald\Http\Transports;

/**
 * The calls of pusher-php-server (`Pusher\Pusher`), with the same names,
 * arguments and answers, against Herald's Pusher HTTP API (`/apps/<id>/`
 * on a router, or on `herald dev`): code written for Pusher, soketi or
 * Reverb moves by changing `use Pusher\Pusher` and the host, with no
 * Guzzle. A Pusher channel is the Herald group of the same name, so a
 * `trigger` reaches Pusher clients (pusher-js, Laravel Echo) and Herald
 * clients alike.
 *
 *     $pusher = new Herald\Pusher\Pusher($key, $secret, $appId, ['host' => '127.0.0.1', 'port' => 8080, 'scheme' => 'http']);
 *     $pusher->trigger('private-App.Models.User.1', 'invoice.paid', ['id' => 7]);
 *     echo $pusher->authorizeChannel($_POST['channel_name'], $_POST['socket_id']);
 *
 * Not here: end-to-end encrypted channels (`private-encrypted-`), which
 * need pusher-php-server's `encryption_master_key_base64` (Herald passes
 * their payloads through untouched), and the `*Async` variants.
 */
final class Pusher
{
    /** pusher-php-server's channel rule, `#` for the user channel. */
    private const CHANNEL = '/\A#?[-a-zA-Z0-9_=@,.;]+\z/';
    private const SOCKET_ID = '/\A\d+\.\d+\z/';
    private const ENCRYPTED_PREFIX = 'private-encrypted-';
    private const MAX_CHANNELS = 100;
    private const USER_AGENT = 'herald-php-pusher/0.1';

    /** `scheme://host:port/path`, where `/apps/<id>/...` is appended. */
    private readonly string $baseUrl;
    private readonly Transport $transport;
    private readonly float $timeout;
    private readonly float $connectTimeout;

    /**
     * @param array{host?: string, port?: int|string, scheme?: string, useTLS?: bool, path?: string,
     *              timeout?: int|float, connect_timeout?: int|float, transport?: mixed} $options
     *        as pusher-php-server's: `host` (required: Herald's router, or `herald dev`), `port`,
     *        `scheme`, `useTLS` (true without `scheme` and `port`: https on 443), `path`, `timeout`
     *        (seconds, default 30); and Herald's `connect_timeout` and `transport` ('curl',
     *        'streams' or a {@see Transport}; see {@see \Herald\Client})
     * @throws PusherException when the options cannot make a URL
     */
    public function __construct(
        private readonly string $auth_key,
        #[\SensitiveParameter] private readonly string $secret,
        private readonly string $app_id,
        array $options = [],
    ) {
        $host = preg_replace('#^https?://#', '', (string) ($options['host'] ?? ''), 1);
        if ($host === '' || $host === null) {
            throw new PusherException("give the host of Herald's Pusher API (a router, or herald dev) as options['host']");
        }
        $tls = ($options['useTLS'] ?? true) === true && !isset($options['scheme']) && !isset($options['port']);
        $scheme = $tls ? 'https' : (string) ($options['scheme'] ?? 'http');
        $port = $tls ? 443 : (int) ($options['port'] ?? 80);
        if (!in_array($scheme, ['http', 'https'], true)) {
            throw new PusherException("scheme must be http or https, not \"{$scheme}\"");
        }
        $this->baseUrl = "{$scheme}://{$host}:{$port}" . rtrim((string) ($options['path'] ?? ''), '/');
        $this->timeout = (float) ($options['timeout'] ?? 30);
        $this->connectTimeout = (float) ($options['connect_timeout'] ?? 2.0);
        if ($this->timeout <= 0 || $this->connectTimeout <= 0) {
            throw new PusherException('timeouts must be positive');
        }
        $this->transport = Transports::choose($options['transport'] ?? null);
    }

    /**
     * An event on one or more channels (at most 100). `$params` may hold
     * `socket_id` (that connection is left out: Laravel's `toOthers()`)
     * and `info` (`subscription_count`, `user_count`).
     *
     * @param string|list<string> $channels
     * @return object `{}`, or with `info` `{channels: array<name, object>}`
     * @throws PusherException before sending; ApiErrorException when Herald refuses
     */
    public function trigger(
        array|string $channels,
        string $event,
        mixed $data,
        array $params = [],
        bool $already_encoded = false,
    ): object {
        $channels = is_string($channels) ? [$channels] : array_values($channels);
        if (count($channels) > self::MAX_CHANNELS) {
            throw new PusherException('An event can be triggered on a maximum of 100 channels in a single call.');
        }
        array_map(self::checkChannel(...), $channels);
        $body = self::event($channels, $event, $data, $params, $already_encoded);
        return self::channelsAsArray($this->post('/events', self::json($body)));
    }

    /**
     * Several events in one call (Herald takes at most 10), each
     * `['channel' => ..., 'name' => ..., 'data' => ..., 'socket_id'?, 'info'?]`.
     *
     * @param list<array{channel: string, name: string, data: mixed, socket_id?: string, info?: string}> $batch
     * @return object `{}`, or with `info` `{batch: list<object>}`
     */
    public function triggerBatch(array $batch = [], bool $already_encoded = false): object
    {
        $events = [];
        foreach ($batch as $event) {
            self::checkChannel($event['channel']);
            $params = array_intersect_key($event, ['socket_id' => true, 'info' => true]);
            $events[] = self::event([$event['channel']], $event['name'], $event['data'], $params, $already_encoded);
        }
        return self::channelsAsArray($this->post('/batch_events', self::json(['batch' => $events])));
    }

    /** An event on the user channel of a signed-in user: every connection of `$user_id`. */
    public function sendToUser(string $user_id, string $event, mixed $data, bool $already_encoded = false): object
    {
        self::checkUserId($user_id);
        return $this->trigger(["#server-to-user-{$user_id}"], $event, $data, [], $already_encoded);
    }

    /** Closes every connection of `$user_id`, on every edge. */
    public function terminateUserConnections(string $user_id): object
    {
        self::checkUserId($user_id);
        return $this->post('/users/' . rawurlencode($user_id) . '/terminate_connections', '{}');
    }

    /**
     * One channel: `{occupied, subscription_count?, user_count?}`.
     *
     * @param array{info?: string} $params
     */
    public function getChannelInfo(string $channel, array $params = []): object
    {
        self::checkChannel($channel);
        return $this->get('/channels/' . $channel, $params);
    }

    /**
     * The occupied channels: `{channels: array<name, object>}`.
     *
     * @param array{filter_by_prefix?: string, info?: string} $params
     */
    public function getChannels(array $params = []): object
    {
        $result = $this->get('/channels', $params);
        $result->channels = get_object_vars($result->channels);
        return $result;
    }

    /** A presence channel's members: `{users: list<{id}>}`. */
    public function getPresenceUsers(string $channel): object
    {
        self::checkChannel($channel);
        return $this->get('/channels/' . $channel . '/users');
    }

    /**
     * GET any resource under `/apps/<id>`, signed.
     *
     * @param array<string, string> $params
     * @return mixed the JSON answer, as objects unless `$associative`
     */
    public function get(string $path, array $params = [], bool $associative = false): mixed
    {
        return $this->call('GET', $path, $params, null, $associative);
    }

    /**
     * POST `$body` (JSON text) to any resource under `/apps/<id>`, signed.
     *
     * @param array<string, string> $params
     */
    public function post(string $path, string $body, array $params = []): mixed
    {
        return $this->call('POST', $path, $params + ['body_md5' => md5($body)], $body, false);
    }

    /**
     * The answer to pusher-js's request to subscribe to a private channel
     * (Laravel's `/broadcasting/auth`): `{"auth": "<key>:<signature>"}`,
     * with `channel_data` when `$custom_data` is given.
     */
    public function authorizeChannel(string $channel, string $socket_id, ?string $custom_data = null): string
    {
        self::checkChannel($channel);
        self::checkSocketId($socket_id);
        if (str_starts_with($channel, self::ENCRYPTED_PREFIX)) {
            throw new PusherException("{$channel}: encrypted channels need pusher-php-server's encryption_master_key_base64");
        }
        $signed = $custom_data ? "{$socket_id}:{$channel}:{$custom_data}" : "{$socket_id}:{$channel}";
        $answer = ['auth' => $this->auth_key . ':' . $this->sign($signed)];
        if ($custom_data) {
            $answer['channel_data'] = $custom_data;
        }
        return self::json($answer, JSON_UNESCAPED_SLASHES);
    }

    /**
     * The same for a presence channel, whose members see `$user_id` and
     * `$user_info`.
     */
    public function authorizePresenceChannel(string $channel, string $socket_id, string $user_id, mixed $user_info = null): string
    {
        $user_data = ['user_id' => $user_id];
        if ($user_info) {
            $user_data['user_info'] = $user_info;
        }
        return $this->authorizeChannel($channel, $socket_id, self::json($user_data));
    }

    /**
     * The answer to pusher-js's sign-in (Laravel's
     * `/broadcasting/user-auth`): `{"auth", "user_data"}`; `$user_data`
     * needs an `id`, which becomes the connection's Herald user.
     *
     * @param array{id: string} $user_data
     */
    public function authenticateUser(string $socket_id, array $user_data): string
    {
        self::checkSocketId($socket_id);
        if (!array_key_exists('id', $user_data)) {
            throw new PusherException('user_data has no id field');
        }
        self::checkUserId((string) $user_data['id']);
        $serialized = self::json($user_data);
        $auth = $this->auth_key . ':' . $this->sign("{$socket_id}::user::{$serialized}");
        return self::json(['auth' => $auth, 'user_data' => $serialized]);
    }

    /**
     * A webhook Herald sent, checked ({@see verifySignature()}) and read.
     *
     * @param array<string, string> $headers the request's headers (getallheaders())
     * @param string $body the raw body (file_get_contents('php://input'))
     */
    public function webhook(array $headers, string $body): Webhook
    {
        $this->verifySignature($headers, $body);
        try {
            $decoded = json_decode($body, false, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            throw new PusherException('Data decoding error.');
        }
        return new Webhook((int) $decoded->time_ms, array_values((array) $decoded->events));
    }

    /**
     * Checks `X-Pusher-Key` and `X-Pusher-Signature` (HMAC-SHA256 of the
     * body with the secret, compared in constant time); headers in any case.
     *
     * @param array<string, string> $headers
     * @throws PusherException when the key or the signature is wrong
     */
    public function verifySignature(array $headers, string $body): void
    {
        $headers = array_change_key_case($headers, CASE_LOWER);
        $signature = (string) ($headers['x-pusher-signature'] ?? '');
        if (($headers['x-pusher-key'] ?? null) === $this->auth_key && hash_equals($this->sign($body), $signature)) {
            return;
        }
        throw new PusherException(sprintf('Received WebHook with invalid signature: got %s.', $signature));
    }

    /**
     * The signed query of a call, as pusher-php-server builds it: every
     * parameter, keys sorted, `auth_signature` the HMAC-SHA256 of
     * `METHOD\nPATH\nk=v&...` (values unescaped).
     *
     * @param array<string, string> $query_params
     * @return array<string, string>
     */
    public static function build_auth_query_params(
        string $auth_key,
        #[\SensitiveParameter] string $auth_secret,
        string $request_method,
        string $request_path,
        array $query_params = [],
        string $auth_version = '1.0',
        ?string $auth_timestamp = null,
    ): array {
        $params = ['auth_key' => $auth_key, 'auth_timestamp' => $auth_timestamp ?? (string) time(), 'auth_version' => $auth_version];
        $params = array_merge($params, $query_params);
        ksort($params);
        $pairs = array_map(static fn ($key, $value) => "{$key}={$value}", array_keys($params), $params);
        $params['auth_signature'] = hash_hmac('sha256', "{$request_method}\n{$request_path}\n" . implode('&', $pairs), $auth_secret);
        return $params;
    }

    private function call(string $method, string $path, array $params, ?string $body, bool $associative): mixed
    {
        $path = '/apps/' . $this->app_id . $path;
        $query = self::build_auth_query_params($this->auth_key, $this->secret, $method, $path, $params);
        $url = $this->baseUrl . $path . '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986);
        $headers = ['Content-Type' => 'application/json', 'User-Agent' => self::USER_AGENT];
        try {
            $response = $this->transport->send($method, $url, $headers, $body, $this->timeout, $this->connectTimeout);
        } catch (ConnectionException $e) {
            throw new ApiErrorException($e->getMessage(), 0, $e);
        }
        if ($response->status !== 200) {
            throw new ApiErrorException(trim($response->body), $response->status);
        }
        try {
            return json_decode($response->body, $associative, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            throw new PusherException('Data decoding error.');
        }
    }

    private function sign(string $text): string
    {
        return hash_hmac('sha256', $text, $this->secret);
    }

    /** One event of a trigger or a batch, as pusher-php-server makes it. */
    private static function event(array $channels, string $event, mixed $data, array $params, bool $already_encoded): array
    {
        if (isset($params['socket_id'])) {
            self::checkSocketId($params['socket_id']);
        }
        foreach ($channels as $channel) {
            if (str_starts_with($channel, self::ENCRYPTED_PREFIX)) {
                throw new PusherException("{$channel}: encrypted channels need pusher-php-server's encryption_master_key_base64");
            }
        }
        $body = ['name' => $event, 'data' => $already_encoded ? $data : self::json($data)];
        $body += count($channels) === 1 ? ['channel' => $channels[0]] : ['channels' => $channels];
        return array_merge($body, $params);
    }

    /** `channels` of a trigger's answer as an array, as pusher-php-server gives it. */
    private static function channelsAsArray(object $result): object
    {
        if (isset($result->channels) && is_object($result->channels)) {
            $result->channels = get_object_vars($result->channels);
        }
        return $result;
    }

    private static function json(mixed $value, int $flags = 0): string
    {
        try {
            return json_encode($value, $flags | JSON_THROW_ON_ERROR);
        } catch (\JsonException) {
            throw new PusherException('Data encoding error.');
        }
    }

    private static function checkChannel(string $channel): void
    {
        if (!preg_match(self::CHANNEL, $channel)) {
            throw new PusherException('Invalid channel name ' . $channel);
        }
    }

    private static function checkSocketId(string $socket_id): void
    {
        if (!preg_match(self::SOCKET_ID, $socket_id)) {
            throw new PusherException('Invalid socket ID ' . $socket_id);
        }
    }

    private static function checkUserId(string $user_id): void
    {
        if ($user_id === '') {
            throw new PusherException('Invalid user id ' . $user_id);
        }
    }
}
