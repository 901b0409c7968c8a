// Runs the PWA's SMS encoder (pwa/js/sms_codec.js) for the Python tests: one JSON
// line in ({record, key}), one JSON line out ({body} or {error}).
import { createInterface } from "node:readline";
import { encode } from "../pwa/js/sms_codec.js";

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let out;
  try {
    const { record, key } = JSON.parse(line);
    out = { body: await encode(record, key) };
  } catch (err) {
    out = { error: String(err) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
