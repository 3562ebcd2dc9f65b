// Launch oauth2-mock-server (axa-group, not written by this project) for the
// auth tests, with a small control API to script the identity provider:
//   stdout, first line: {"issuer": "<url>", "token_url": "<url>", "control": "<url>"}
//   POST <control>/config          {expires_in, jwt_expires_in, rotate, fail_next, strict}
//   POST <control>/refresh-tokens  {"token": "..."}   register a valid refresh token
//   POST <control>/revoke          {"token": "..."}   make a refresh token invalid
//   GET  <control>/requests        token requests seen (grant, client, refresh token)
//   POST <control>/reset
import http from "node:http";
import { OAuth2Server } from "oauth2-mock-server";

const defaults = () => ({
  expires_in: 300,
  jwt_expires_in: null, // null: same as expires_in
  rotate: false,
  fail_next: 0,
  strict: true, // refresh tokens must be registered
  clients: { "hub-client": "hub-secret" },
});
let config = defaults();
let validRefresh = new Set();
let requests = [];

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");

server.service.on("beforeTokenSigning", (token, req) => {
  const ttl = config.jwt_expires_in ?? config.expires_in;
  token.payload.exp = token.payload.iat + ttl;
  if (req.body.grant_type === "refresh_token") {
    token.payload.preferred_username = "alice";
  }
});

server.service.on("beforeResponse", (response, req) => {
  const body = req.body;
  const clientId = body.client_id;
  requests.push({
    grant_type: body.grant_type,
    client_id: clientId,
    refresh_token: body.refresh_token ?? null,
  });
  if (config.fail_next > 0) {
    config.fail_next -= 1;
    response.statusCode = 503;
    response.body = { error: "temporarily_unavailable" };
    return;
  }
  if (config.clients[clientId] === undefined || config.clients[clientId] !== body.client_secret) {
    response.statusCode = 401;
    response.body = { error: "invalid_client" };
    return;
  }
  response.body.expires_in = config.expires_in;
  if (body.grant_type === "refresh_token") {
    const old = body.refresh_token;
    if (config.strict && !validRefresh.has(old)) {
      response.statusCode = 400;
      response.body = { error: "invalid_grant", error_description: "Token is not active" };
      return;
    }
    if (config.rotate) {
      validRefresh.delete(old);
      validRefresh.add(response.body.refresh_token);
    } else {
      delete response.body.refresh_token;
    }
  }
});

await server.start(0, "127.0.0.1");
const issuer = server.issuer.url;

const readJson = (req) =>
  new Promise((resolve) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => resolve(data ? JSON.parse(data) : {}));
  });

const control = http.createServer(async (req, res) => {
  const send = (obj) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(obj));
  };
  if (req.method === "GET" && req.url === "/requests") return send(requests);
  const body = await readJson(req);
  if (req.url === "/config") {
    Object.assign(config, body);
    return send(config);
  }
  if (req.url === "/refresh-tokens") {
    validRefresh.add(body.token);
    return send({ ok: true });
  }
  if (req.url === "/revoke") {
    validRefresh.delete(body.token);
    return send({ ok: true });
  }
  if (req.url === "/reset") {
    config = defaults();
    validRefresh = new Set();
    requests = [];
    return send({ ok: true });
  }
  res.writeHead(404);
  res.end();
});
control.listen(0, "127.0.0.1", () => {
  const port = control.address().port;
  console.log(
    JSON.stringify({
      issuer,
      token_url: `${issuer}/token`,
      control: `http://127.0.0.1:${port}`,
    }),
  );
});

const stop = async () => {
  control.close();
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
