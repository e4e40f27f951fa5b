// Unchanged @nktkas/hyperliquid ExchangeClient code against a local paper exchange (hlarchive simulate or serve --paper).
// Usage: node hyperliquid_ts_exchange.mjs http://127.0.0.1:PORT PRIVATE_KEY  -> one JSON object on stdout.
import { ExchangeClient, HttpTransport, InfoClient, WebSocketTransport } from "@nktkas/hyperliquid";
import { privateKeyToAccount } from "viem/accounts";
import WebSocket from "ws";

globalThis.WebSocket ??= WebSocket; // Node 20 has no global WebSocket (Node 22 does)

const [base, key] = process.argv.slice(2);
const wallet = privateKeyToAccount(key);
const transport = new HttpTransport({ apiUrl: base, isTestnet: true });
const info = new InfoClient({ transport });
const exchange = new ExchangeClient({ transport, wallet });
const out = { address: wallet.address };
const tenth = (x) => (Math.round(x * 10) / 10).toString();

const book = await info.l2Book({ coin: "ETH" });
const [bid, ask] = [Number(book.levels[0][0].px), Number(book.levels[1][0].px)];
const eth = (await info.meta()).universe.findIndex((a) => a.name === "ETH");
out.resting = await exchange.order({ orders: [{ a: eth, b: true, p: tenth(bid * 0.9), s: "0.05", r: false, t: { limit: { tif: "Gtc" } } }], grouping: "na" });
const oid = out.resting.response.data.statuses[0].resting.oid;
out.openOrders = await info.openOrders({ user: wallet.address });
out.cancel = await exchange.cancel({ cancels: [{ a: eth, o: oid }] });
out.filled = await exchange.order({ orders: [{ a: eth, b: true, p: tenth(ask * 1.05), s: "0.05", r: false, t: { limit: { tif: "Ioc" } } }], grouping: "na" });
out.leverage = await exchange.updateLeverage({ asset: eth, isCross: true, leverage: 7 });
out.state = await info.clearinghouseState({ user: wallet.address });

const ws = new WebSocketTransport({ url: base.replace(/^http/, "ws") + "/ws", isTestnet: true });
try {
  const overSocket = new ExchangeClient({ transport: ws, wallet });
  out.wsResting = await overSocket.order({ orders: [{ a: eth, b: false, p: tenth(ask * 1.1), s: "0.05", r: false, t: { limit: { tif: "Alo" } } }], grouping: "na" });
  out.wsCancel = await overSocket.cancel({ cancels: [{ a: eth, o: out.wsResting.response.data.statuses[0].resting.oid }] });
} finally {
  await ws.close();
}
out.fills = await info.userFills({ user: wallet.address });
process.stdout.write(JSON.stringify(out));
process.exit(0);
