// A Hyperliquid-shaped feed served by the `ws` package (a websocket server nobody at hlarchive wrote),
// for tests/test_clients.py: the recorder must take its frames whole, including messages the server
// sends in fragments with a ping between them. Usage: node ws_feed.mjs LOG_PATH FRAMES_PER_SUBSCRIPTION
import { WebSocketServer } from "ws";
import { appendFileSync } from "node:fs";

const [logPath, perSub] = [process.argv[2], Number(process.argv[3])];
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/ws" });

function frameFor(sub, i) {
  const time = 1767225600000 + i * 100;
  if (sub.type === "bbo") {
    return { channel: "bbo", data: { coin: sub.coin, time, bbo: [{ px: `${100 + i}.5`, sz: "1.25", n: 2 }, i % 7 === 0 ? null : { px: `${101 + i}.0`, sz: "0.5", n: 1 }] } };
  }
  if (sub.type === "l2Book") {
    const side = (base) => Array.from({ length: 20 }, (_, k) => ({ px: `${base + k}.1`, sz: `${k + 1}.25`, n: k + 1 }));
    return { channel: "l2Book", data: { coin: sub.coin, time, levels: [side(1000 - 20), side(1001)] } };
  }
  return { channel: "trades", data: [{ coin: sub.coin, side: i % 2 ? "B" : "A", px: `${200 + i}.0`, sz: "0.1", time, hash: "0x" + "ab".repeat(32), tid: 1000 + i, users: ["0x" + "01".repeat(20), "0x" + "02".repeat(20)] }] };
}

server.on("connection", (ws) => {
  ws.send("Websocket connection established.");
  ws.on("message", (raw) => {
    const request = JSON.parse(raw.toString());
    if (request.method === "ping") return ws.send(JSON.stringify({ channel: "pong" }));
    if (request.method !== "subscribe") return;
    const sub = request.subscription;
    ws.send(JSON.stringify({ channel: "subscriptionResponse", data: { method: "subscribe", subscription: sub } }));
    for (let i = 0; i < perSub; i++) {
      const text = JSON.stringify(frameFor(sub, i));
      appendFileSync(logPath, text + "\n");
      if (i % 3 === 1) {  // in three fragments, with a ping between the first two
        const third = Math.floor(text.length / 3);
        ws.send(text.slice(0, third), { fin: false });
        ws.ping();
        ws.send(text.slice(third, 2 * third), { fin: false });
        ws.send(text.slice(2 * third), { fin: true });
      } else {
        ws.send(text);
      }
    }
  });
});
server.on("listening", () => console.log(`PORT ${server.address().port}`));
