<?php

declare(strict_types=1);

namespace Herald\Exception;

/**
 * Herald's HTTP API answered with an error status. The status and Herald's
 * own message (the `error` of its JSON answer) are kept apart from the
 * exception's message, which says both.
 */
class ApiException extends \RuntimeException implements HeraldException
{
    public function __construct(
        private readonly int $status,
        private readonly string $error,
        private readonly string $body = '',
    ) {
        parent::__construct("Herald API answered HTTP {$status}: {$error}", $status);
    }

    /**
     * The exception for an error answer: a subclass for the statuses a
     * caller handles apart.
     */
    public static function fromAnswer(int $status, string $body): self
    {
        $decoded = json_decode($body, true);
        $error = is_array($decoded) && is_string($decoded['error'] ?? null) ? $decoded['error'] : trim($body);
        return match ($status) {
            400 => new BadRequestException($status, $error, $body),
            401 => new UnauthorizedException($status, $error, $body),
            413 => new PayloadTooLargeException($status, $error, $body),
            503 => new UnavailableException($status, $error, $body),
            default => new self($status, $error, $body),
        };
    }

    /** The HTTP status. */
    public function getStatus(): int
    {
        return $this->status;
    }

    /** Herald's message, e.g. `wrong API key`. */
    public function getError(): string
    {
        return $this->error;
    }

    /** The answer's body as received. */
    public function getBody(): string
    {
        return $this->body;
    }
}
