<?php

/**
 * What every page of the example shares: settings from the environment
 * (defaults fit `just php-demo`), the SDK, the rooms, and small helpers.
 */

declare(strict_types=1);

require __DIR__ . '/../../../sdk/php/autoload.php';

use Herald\Client;
use Herald\Nats\Publisher;
use Herald\Target;

/** The chat's rooms; room R is the Herald group `room:R`. */
const ROOMS = ['lobby', 'php', 'random'];

/** A setting: the environment variable, or the demo's default. */
function setting(string $name): string
{
    $defaults = [
        // `herald dev` serves the API on its own port; a router serves it on :8081.
        'HERALD_API_URL' => 'http://127.0.0.1:8080',
        'HERALD_API_KEY' => 'php-demo-api-key',
        'HERALD_WEBHOOK_SECRET' => 'php-demo-webhook-secret',
        // Where browsers open their WebSocket; empty: this page's host, port 8080.
        'HERALD_WS_URL' => '',
        // When set, form posts publish over NATS instead of the HTTP API.
        'HERALD_NATS_URL' => '',
    ];
    $value = getenv($name);
    return $value === false || $value === '' ? $defaults[$name] : $value;
}

function room_group(string $room): string
{
    return "room:{$room}";
}

/** The room named by `$name`, or null when there is no such room. */
function known_room(mixed $name): ?string
{
    return is_string($name) && in_array($name, ROOMS, true) ? $name : null;
}

/**
 * Publishes a chat message to a room's group, through the HTTP API, or over
 * NATS when HERALD_NATS_URL is set: the same frame either way.
 */
function publish_message(string $room, string $user, string $text, string $via): int
{
    $message = ['room' => $room, 'user' => $user, 'text' => $text, 'via' => $via];
    $to = Target::groups(room_group($room));
    if (setting('HERALD_NATS_URL') !== '') {
        $nats = new Publisher(setting('HERALD_NATS_URL'));
        $count = $nats->publish($to, 'chat/message', $message);
        $nats->flush();
        return $count;
    }
    return (new Client(setting('HERALD_API_URL'), setting('HERALD_API_KEY')))->publish($to, 'chat/message', $message);
}

/** Whether `$text` is 1 to 500 characters of UTF-8. */
function valid_text(string $text): bool
{
    $chars = preg_match_all('/./su', $text);
    return $chars !== false && $chars >= 1 && $chars <= 500;
}

function html(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** The logged-in user of this browser's session, or null. */
function current_user(): ?string
{
    session_start(['read_and_close' => true]);
    return isset($_SESSION['user']) && is_string($_SESSION['user']) ? $_SESSION['user'] : null;
}

function redirect(string $to): never
{
    header("Location: {$to}", true, 303);
    exit;
}
