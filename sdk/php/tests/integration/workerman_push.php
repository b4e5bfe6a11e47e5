<?php

/**
 * Pushes the way Workerman's push example does, to Herald's push port:
 * `php workerman_push.php <host:port> <line>...` sends each line (a JSON
 * one as `json_encode` writes it, anything else as it is) and prints each
 * answer on a line of its own.
 */

declare(strict_types=1);

$client = stream_socket_client("tcp://{$argv[1]}", $errno, $errmsg, 1);
if ($client === false) {
    fwrite(STDERR, "cannot connect: {$errmsg}\n");
    exit(1);
}
foreach (array_slice($argv, 2) as $line) {
    $data = json_decode($line, true);
    // As in Workerman's example: fwrite($client, json_encode($data)."\n").
    fwrite($client, ($data === null ? $line : json_encode($data)) . "\n");
    echo rtrim((string) fgets($client)), "\n";
}
