<?php

declare(strict_types=1);

namespace Herald\Pusher;

/**
 * A Pusher webhook whose signature was checked ({@see Pusher::webhook()}),
 * as pusher-php-server's `Pusher\Webhook`.
 */
final class Webhook
{
    /** @param list<object> $events */
    public function __construct(private readonly int $time_ms, private readonly array $events)
    {
    }

    /** @return list<object> each `{name, channel, ...}` */
    public function get_events(): array
    {
        return $this->events;
    }

    /** When the batch's first event happened, in Unix milliseconds. */
    public function get_time_ms(): int
    {
        return $this->time_ms;
    }
}
