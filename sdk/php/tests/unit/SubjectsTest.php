<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\InvalidArgumentException;
use Herald\Subjects;
use Herald\Target;
use PHPUnit\Framework\TestCase;

final class SubjectsTest extends TestCase
{
    public function testNamesEverySubjectUnderItsPrefix(): void
    {
        $subjects = new Subjects('acme.herald');
        self::assertSame('acme.herald.user.ann', $subjects->user('ann'));
        self::assertSame('acme.herald.group.~YS5i', $subjects->group('a.b'));
        self::assertSame('acme.herald.conn.0123abcd.7', $subjects->conn('0123abcd.7'));
        self::assertSame('acme.herald.all', $subjects->all());
        self::assertSame('acme.herald.ctl.user.~eCB5', $subjects->controlUser('x y'));
        self::assertSame('acme.herald.ctl.conn.e.0', $subjects->controlConn('e.0'));
        self::assertSame(
            ['acme.herald.user.42', 'acme.herald.group.g', 'acme.herald.conn.e.1'],
            $subjects->forTarget(Target::of(users: [42], groups: ['g'], conns: ['e.1'])),
        );
        self::assertSame(['acme.herald.all'], $subjects->forTarget(Target::of(users: ['a'], all: true)));
    }

    public function testRefusesWhatIsNoPrefixOrConnectionId(): void
    {
        foreach (['', 'a..b', 'a.*', 'a b', '.a'] as $prefix) {
            try {
                new Subjects($prefix);
                self::fail("prefix \"{$prefix}\" was taken");
            } catch (InvalidArgumentException) {
            }
        }
        foreach (['', 'e', 'e.', 'e.01', 'e.1.2', 'e.*', 'e.>', 'a b.1', 'e.x'] as $conn) {
            try {
                (new Subjects())->conn($conn);
                self::fail("conn \"{$conn}\" was taken");
            } catch (InvalidArgumentException $e) {
                self::assertStringContainsString('is not a connection id', $e->getMessage());
            }
        }
    }

    public function testATargetIsHeraldsJson(): void
    {
        self::assertSame('{"users":["1","ann"]}', json_encode(Target::users(1, 'ann')->toArray()));
        self::assertSame('{"all":true}', json_encode(Target::all()->toArray()));
        self::assertSame('{"groups":["g"],"conns":["e.1"]}', json_encode(Target::of(groups: ['g'], conns: ['e.1'])->toArray()));
        self::assertTrue(Target::of()->isEmpty());
        $this->expectException(InvalidArgumentException::class);
        Target::of(groups: [1]);
    }
}
