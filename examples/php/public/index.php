<?php

/**
 * The page: a login form, or the chat. The chat's WebSocket goes to Herald
 * with no token: the browser sends this app's session cookie with the
 * upgrade, and herald.php's `$connect` turns it into the user.
 */

declare(strict_types=1);

require __DIR__ . '/../src/app.php';

$user = current_user();
$room = known_room($_GET['room'] ?? 'lobby') ?? 'lobby';
?>
<!doctype html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title>Herald from PHP: chat</title>
    <style>
        body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
        #messages { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; list-style: none; }
        #messages .system { color: #777; font-style: italic; }
        .via { color: #999; font-size: .8em; }
        form { margin: .5rem 0; display: flex; gap: .5rem; }
        form input[type=text] { flex: 1; }
        nav a { margin-right: .75rem; }
        nav a.current { font-weight: bold; }
    </style>
</head>
<body>
<h1>Herald from PHP</h1>
<?php if ($user === null): ?>
    <p>Log in with any name; the chat then knows you from your PHP session, with no token.</p>
    <form method="post" action="login.php">
        <input type="text" name="name" placeholder="Your name" required maxlength="32" autofocus>
        <button>Log in</button>
    </form>
<?php else: ?>
    <p>Logged in as <strong id="me"><?= html($user) ?></strong> · <a href="logout.php">Log out</a>
        · <span id="status">connecting…</span></p>
    <nav>Rooms:
        <?php foreach (ROOMS as $name): ?>
            <a href="?room=<?= html($name) ?>" class="<?= $name === $room ? 'current' : '' ?>">#<?= html($name) ?></a>
        <?php endforeach ?>
    </nav>
    <ul id="messages"></ul>
    <form id="send">
        <input type="text" name="text" placeholder="Say something (a WebSocket action, answered by herald.php)" required maxlength="500">
        <button>Send</button>
    </form>
    <form id="post" method="post" action="post.php" target="posted">
        <input type="hidden" name="room" value="<?= html($room) ?>">
        <input type="hidden" name="stay" value="1">
        <input type="text" name="text" placeholder="Or post it (an ordinary form POST to post.php, which publishes)" required maxlength="500">
        <button>Post</button>
    </form>
    <iframe name="posted" hidden></iframe>
    <script type="module">
        import { Herald } from './client.php';

        const room = <?= json_encode($room) ?>;
        const configured = <?= json_encode(setting('HERALD_WS_URL')) ?>;
        // The cookie goes with the upgrade only to this page's host.
        const url = configured || `ws://${location.hostname}:8080/ws`;
        const list = document.getElementById('messages');
        const status = document.getElementById('status');

        function show(text, className = '', via = '') {
            const item = document.createElement('li');
            item.textContent = text;
            item.className = className;
            if (via) {
                const tag = document.createElement('span');
                tag.className = 'via';
                tag.textContent = ` (${via})`;
                item.append(tag);
            }
            list.append(item);
            list.scrollTop = list.scrollHeight;
        }

        const herald = new Herald(url);
        herald.on('$connected', async ({ user }) => {
            status.textContent = `connected as ${user}`;
            await herald.request('chat/join', { room });
        });
        herald.on('$disconnected', () => { status.textContent = 'disconnected, reconnecting…'; });
        herald.on('chat/message', (m) => { if (m.room === room) show(`${m.user}: ${m.text}`, '', m.via); });
        herald.on('chat/joined', (m) => { if (m.room === room) show(`${m.user} joined #${m.room}`, 'system'); });
        herald.on('chat/left', (m) => { if (m.room === room) show(`${m.user} left #${m.room}`, 'system'); });

        document.getElementById('send').addEventListener('submit', async (event) => {
            event.preventDefault();
            const input = event.target.elements.text;
            try {
                await herald.request('chat/send', { room, text: input.value });
                input.value = '';
            } catch (error) {
                show(`not sent: ${error.message}`, 'system');
            }
        });
        // The form posts for real; only the field is cleared after.
        document.getElementById('post').addEventListener('submit', (event) => {
            setTimeout(() => { event.target.elements.text.value = ''; });
        });
    </script>
<?php endif ?>
</body>
</html>
