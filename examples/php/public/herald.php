<?php

/**
 * The endpoint Herald's router calls for this app's actions (routes.toml):
 * `$connect` says who a browser is from its PHP session cookie, and the chat
 * actions join, leave and send. Every request is checked to come from
 * Herald (Herald-Signature) before any of this runs.
 */

declare(strict_types=1);

require __DIR__ . '/../src/app.php';

use Herald\Handler\ActionError;
use Herald\Handler\Handler;
use Herald\Handler\Request;
use Herald\Handler\Response;
use Herald\Target;

/** The room an action names, or a 404 error reply. */
function requested_room(Request $request): string
{
    return known_room($request->details['room'] ?? null) ?? throw new ActionError(404, 'no such room');
}

$handler = new Handler(setting('HERALD_WEBHOOK_SECRET'));

// The browser's PHPSESSID cookie names the session login.php wrote.
$handler->onConnectFromSession(
    fn (array $session) => isset($session['user'])
        ? Response::connect($session['user'], [room_group('lobby')], ['name' => $session['user']])
        : null,
);

$handler->on('chat/join', function (Request $request) {
    $room = requested_room($request);
    return Response::details(['room' => $room])
        ->join(room_group($room))
        ->publish(Target::groups(room_group($room)), 'chat/joined', ['room' => $room, 'user' => $request->user]);
});

$handler->on('chat/leave', function (Request $request) {
    $room = requested_room($request);
    return Response::details(['room' => $room])
        ->leave(room_group($room))
        ->publish(Target::groups(room_group($room)), 'chat/left', ['room' => $room, 'user' => $request->user]);
});

$handler->on('chat/send', function (Request $request) {
    $room = requested_room($request);
    $text = trim((string) ($request->details['text'] ?? ''));
    if (!valid_text($text)) {
        throw new ActionError(400, 'a message is 1 to 500 characters');
    }
    $message = ['room' => $room, 'user' => $request->user, 'text' => $text, 'via' => 'websocket'];
    return Response::details(['sent' => true])
        ->publish(Target::groups(room_group($room)), 'chat/message', $message);
});

$handler->run();
