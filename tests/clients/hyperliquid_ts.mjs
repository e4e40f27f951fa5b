// Unchanged @nktkas/hyperliquid client code against a local Hyperliquid (hlarchive simulate or serve).
// Usage: node hyperliquid_ts.mjs http://127.0.0.1:PORT USER_ADDRESS  -> one JSON object on stdout.
import { HttpTransport, InfoClient, SubscriptionClient, WebSocketTransport } from "@nktkas/hyperliquid";
import WebSocket from "ws";

globalThis.WebSocket ??= WebSocket; // Node 20 has no global WebSocket (Node 22 does): give the runtime one, the client is unchanged

const [base, user] = process.argv.slice(2);
const out = {};

const http = new InfoClient({ transport: new HttpTransport({ apiUrl: base, isTestnet: true }) });
out.meta = await http.meta();
out.spotMeta = await http.spotMeta();
out.metaAndAssetCtxs = await http.metaAndAssetCtxs();
out.allMids = await http.allMids();
out.l2Book = await http.l2Book({ coin: "BTC" });
out.clearinghouseState = await http.clearinghouseState({ user });
out.spotClearinghouseState = await http.spotClearinghouseState({ user });
out.candleSnapshot = await http.candleSnapshot({ coin: "BTC", interval: "1m", startTime: 0 });

const ws = new WebSocketTransport({ url: base.replace(/^http/, "ws") + "/ws" });
try {
  const overSocket = new InfoClient({ transport: ws });
  out.wsMeta = await overSocket.meta();
  out.wsL2Book = await overSocket.l2Book({ coin: "ETH" });
  const subs = new SubscriptionClient({ transport: ws });
  out.trades = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no trades frame within 10 s")), 10_000);
    subs.trades({ coin: "BTC" }, (trades) => { clearTimeout(timer); resolve(trades); }).catch(reject);
  });
} finally {
  await ws.close();
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
