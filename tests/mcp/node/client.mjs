// An MCP client that is not ours: the official TypeScript SDK lists optima-bi's
// tools and calls whoami and get_sales, over stdio or streamable HTTP.
//
//   node client.mjs http <url> <get_sales arguments as JSON>
//   node client.mjs stdio <get_sales arguments as JSON> <command> [args…]
//
// Prints one JSON object: the tool names and both structured results.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, ...rest] = process.argv.slice(2);
let transport;
let salesArgs;
if (mode === "http") {
  transport = new StreamableHTTPClientTransport(new URL(rest[0]));
  salesArgs = JSON.parse(rest[1]);
} else {
  salesArgs = JSON.parse(rest[0]);
  transport = new StdioClientTransport({ command: rest[1], args: rest.slice(2), stderr: "ignore" });
}

const client = new Client({ name: "optima-bi-node-test", version: "1.0.0" });
await client.connect(transport);
const { tools } = await client.listTools();
const whoami = await client.callTool({ name: "whoami", arguments: {} });
const sales = await client.callTool({ name: "get_sales", arguments: salesArgs });
const bad = await client.callTool({ name: "get_sales", arguments: { ...salesArgs, bucket: "year" } });
console.log(
  JSON.stringify({
    tools: tools.map((t) => t.name),
    whoami: whoami.structuredContent,
    sales: sales.structuredContent,
    bad: { isError: bad.isError, structured: bad.structuredContent },
  }),
);
await client.close();
