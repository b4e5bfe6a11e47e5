// Drives the npm `pusher` (Pusher's own server SDK for Node) for Herald's
// integration tests (tests/src/pusher_sdk.rs): one JSON command per line on
// stdin, one JSON answer per line on stdout.
//
// The client is made from PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET,
// PUSHER_HOST and PUSHER_PORT, as a Laravel app's .env gives them.
//
// Commands:
//   {"call": "<method>", "args": [...]}  a method of the client; answers
//       {"ok": <result>}: an API call's status and parsed JSON body, or a
//       signature's object; or {"error": {"message", "status"?, "body"?}}.
//   {"skew_clock": <seconds>}  the SDK's clock runs that far off from now
//       on (a backend whose clock is wrong).
//   {"webhook": {"headers": {...}, "body": "<text>"}}  checks a webhook as
//       a receiver would: {"ok": {"valid", "time_ms", "events"}}.
import { createInterface } from "node:readline"
import Pusher from "pusher"

const env = (name) => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}

const pusher = new Pusher({
  appId: env("PUSHER_APP_ID"),
  key: env("PUSHER_KEY"),
  secret: env("PUSHER_SECRET"),
  host: env("PUSHER_HOST"),
  port: env("PUSHER_PORT"),
  useTLS: false,
  timeout: 10000,
})

const realNow = Date.now
let skewMs = 0
Date.now = () => realNow() + skewMs

async function run(command) {
  if ("skew_clock" in command) {
    skewMs = command.skew_clock * 1000
    return null
  }
  if ("webhook" in command) {
    const { headers, body } = command.webhook
    const lowered = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
    const webhook = pusher.webhook({ headers: lowered, rawBody: body })
    const valid = webhook.isValid()
    return valid ? { valid, time_ms: webhook.getTime().getTime(), events: webhook.getEvents() } : { valid }
  }
  const method = pusher[command.call]
  if (typeof method !== "function") throw new Error(`no method ${command.call}`)
  const result = await method.apply(pusher, command.args ?? [])
  if (result && typeof result.text === "function") {
    const text = await result.text()
    return { status: result.status, body: text ? JSON.parse(text) : null }
  }
  return result
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  let answer
  try {
    answer = { ok: (await run(JSON.parse(line))) ?? null }
  } catch (e) {
    answer = { error: { message: String(e.message ?? e), status: e.status, body: e.body } }
  }
  process.stdout.write(JSON.stringify(answer) + "\n")
}
