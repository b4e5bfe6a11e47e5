<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Pusher\Pusher;
use Herald\Pusher\PusherException;
use PHPUnit\Framework\TestCase;

/**
 * The Pusher-compatible calls' signatures, against Pusher's documented
 * vectors (Pusher's authentication docs, key 278d425bdf160c739803) and the
 * ones pusher-php-server's own tests check (key thisisaauthkey), so a page
 * authorised here is authorised by Herald, by Pusher and by soketi alike.
 */
final class PusherTest extends TestCase
{
    private const DOCS_KEY = '278d425bdf160c739803';
    private const DOCS_SECRET = '7ad3773142a6692b25b8';

    private static function docs(): Pusher
    {
        return new Pusher(self::DOCS_KEY, self::DOCS_SECRET, '3', ['host' => '127.0.0.1', 'port' => 9, 'scheme' => 'http']);
    }

    private static function phpServers(): Pusher
    {
        return new Pusher('thisisaauthkey', 'thisisasecret', '1', ['host' => '127.0.0.1']);
    }

    public function testPrivateChannelAsPushersDocs(): void
    {
        self::assertSame(
            '{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}',
            self::docs()->authorizeChannel('private-foobar', '1234.1234'),
        );
    }

    public function testPresenceChannelAsPushersDocs(): void
    {
        $channelData = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
        $answer = json_decode(self::docs()->authorizeChannel('presence-foobar', '1234.1234', $channelData), true);
        self::assertSame(
            '278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c',
            $answer['auth'],
        );
        self::assertSame($channelData, $answer['channel_data'], 'the exact text signed, never re-serialised');
    }

    public function testPresenceHelperSignsWhatItSends(): void
    {
        $answer = json_decode(self::docs()->authorizePresenceChannel('presence-room', '1.2', '7', ['name' => 'Ann']), true);
        self::assertSame('{"user_id":"7","user_info":{"name":"Ann"}}', $answer['channel_data']);
        $expected = hash_hmac('sha256', '1.2:presence-room:' . $answer['channel_data'], self::DOCS_SECRET);
        self::assertSame(self::DOCS_KEY . ':' . $expected, $answer['auth']);
    }

    public function testRestSignatureAsPushersDocs(): void
    {
        $body = '{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}';
        self::assertSame('ec365a775a4cd0599faeb73354201b6f', md5($body));
        $params = Pusher::build_auth_query_params(
            self::DOCS_KEY,
            self::DOCS_SECRET,
            'POST',
            '/apps/3/events',
            ['body_md5' => md5($body)],
            '1.0',
            '1353088179',
        );
        self::assertSame('da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c', $params['auth_signature']);
    }

    public function testChannelsAsPusherPhpServersTests(): void
    {
        $pusher = self::phpServers();
        self::assertSame(
            '{"auth":"thisisaauthkey:751ccc12aeaa79d46f7c199bced5fa47527d3480b51fe61a0bd10438241bd52d"}',
            $pusher->authorizeChannel('testing_pusher-php', '1.1'),
        );
        self::assertSame(
            '{"auth":"thisisaauthkey:3b3f1dcc4d7d2f95dd10ed05562397b3287b102d4cccfacbf30eed2f1ffa3d69","channel_data":"{\"user_id\": \"123\"}"}',
            $pusher->authorizeChannel('-azAZ9_=@,.;', '45055.28877557', '{"user_id": "123"}'),
        );
    }

    public function testUserSignInAsPusherPhpServersTests(): void
    {
        $pusher = self::phpServers();
        self::assertSame(
            '{"auth":"thisisaauthkey:fc713f433deb729d0d96f9e26ef054285cbc3e833ebe840b93722a2fa16a6a18","user_data":"{\"id\":\"123\"}"}',
            $pusher->authenticateUser('12345.6789', ['id' => '123']),
        );
        self::assertSame(
            '{"auth":"thisisaauthkey:0dddb208b53c7649f3fbbb86254a6e1986bc6f8b566423ea690c9ca773497373","user_data":"{\"id\":\"123\",\"name\":\"John Smith\"}"}',
            $pusher->authenticateUser('12345.6789', ['id' => '123', 'name' => 'John Smith']),
        );
    }

    public function testWebhookAsPushersDocs(): void
    {
        $pusher = new Pusher('k', 'thisisasecret', '1', ['host' => '127.0.0.1']);
        $body = '{"hello":"world"}';
        $signature = '40e0ad3b9aa49529322879e84de1aaaf18bde1efe839ca263d540cc865510d25';
        $pusher->verifySignature(['X-Pusher-Key' => 'k', 'X-Pusher-Signature' => $signature], $body);
        $pusher->verifySignature(['x-pusher-key' => 'k', 'x-pusher-signature' => $signature], $body);
        $this->expectException(PusherException::class);
        $pusher->verifySignature(['X-Pusher-Key' => 'k', 'X-Pusher-Signature' => $signature], '{"hello":"world!"}');
    }

    public function testAWebhookIsRead(): void
    {
        $pusher = new Pusher('k', 's', '1', ['host' => '127.0.0.1']);
        $body = '{"time_ms":1700000000123,"events":[{"name":"channel_occupied","channel":"news"}]}';
        $webhook = $pusher->webhook(['X-Pusher-Key' => 'k', 'X-Pusher-Signature' => hash_hmac('sha256', $body, 's')], $body);
        self::assertSame(1700000000123, $webhook->get_time_ms());
        self::assertSame('channel_occupied', $webhook->get_events()[0]->name);
        $this->expectException(PusherException::class);
        $pusher->webhook(['X-Pusher-Key' => 'other', 'X-Pusher-Signature' => hash_hmac('sha256', $body, 's')], $body);
    }

    /** @return iterable<string, array{callable(Pusher): mixed, string}> */
    public static function refusals(): iterable
    {
        yield 'socket id with a colon' => [fn (Pusher $p) => $p->authorizeChannel('private-a', '1.1:'), 'Invalid socket ID 1.1:'];
        yield 'channel with a colon' => [fn (Pusher $p) => $p->authorizeChannel('test_channel:', '1.1'), 'Invalid channel name test_channel:'];
        yield 'no user id' => [fn (Pusher $p) => $p->authenticateUser('1.1', ['name' => 'x']), 'user_data has no id field'];
        yield 'empty user id' => [fn (Pusher $p) => $p->authenticateUser('1.1', ['id' => '']), 'Invalid user id '];
        yield '101 channels' => [
            fn (Pusher $p) => $p->trigger(array_map(fn ($i) => "c{$i}", range(1, 101)), 'e', 1),
            'An event can be triggered on a maximum of 100 channels in a single call.',
        ];
        yield 'bad socket_id param' => [fn (Pusher $p) => $p->trigger('c', 'e', 1, ['socket_id' => 'x']), 'Invalid socket ID x'];
        yield 'encrypted channel' => [
            fn (Pusher $p) => $p->trigger('private-encrypted-a', 'e', 1),
            "private-encrypted-a: encrypted channels need pusher-php-server's encryption_master_key_base64",
        ];
        yield 'data JSON cannot carry' => [fn (Pusher $p) => $p->trigger('c', 'e', NAN), 'Data encoding error.'];
    }

    /** @dataProvider refusals */
    public function testRefusedBeforeSending(callable $call, string $message): void
    {
        $this->expectException(PusherException::class);
        $this->expectExceptionMessage($message);
        $call(self::docs());
    }

    public function testAHostIsNeeded(): void
    {
        $this->expectException(PusherException::class);
        $this->expectExceptionMessage("give the host of Herald's Pusher API");
        new Pusher('k', 's', '1');
    }
}
