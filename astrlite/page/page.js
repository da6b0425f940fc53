// The astrlite chat page: a client of the public API like any other.
// Text from the server is always inserted as text (textContent), never as HTML.
"use strict";

(function () {
  const KEY_ITEM = "astrlite.key";
  const USER_ITEM = "astrlite.username";
  const PAGE_SIZE = 20;

  // ---- SSE reader -------------------------------------------------------------------
  // Turns a byte stream into the data of each event. Bytes may be cut anywhere (inside a
  // UTF-8 character, a line ending or a field name), so text is decoded in streaming mode
  // and a line is only read once its end has arrived.
  class SseParser {
    constructor(onData) {
      this.onData = onData;
      this.decoder = new TextDecoder("utf-8");
      this.buffer = "";
      this.data = [];
    }

    push(bytes) {
      this.pushText(this.decoder.decode(bytes, { stream: true }));
    }

    pushText(text) {
      this.buffer += text;
      let start = 0;
      for (;;) {
        const cr = this.buffer.indexOf("\r", start);
        const lf = this.buffer.indexOf("\n", start);
        let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
        if (end < 0) break;
        let next = end + 1;
        if (this.buffer[end] === "\r") {
          if (end + 1 >= this.buffer.length) break; // a "\n" may still follow
          if (this.buffer[end + 1] === "\n") next = end + 2;
        }
        this.line(this.buffer.slice(start, end));
        start = next;
      }
      this.buffer = this.buffer.slice(start);
    }

    // At the end of the stream: a lone trailing "\r" ends its line; an event without its
    // blank line is incomplete and dropped, as the SSE standard says.
    end() {
      this.pushText(this.decoder.decode());
      if (this.buffer.endsWith("\r")) this.line(this.buffer.slice(0, -1));
      this.buffer = "";
      this.data = [];
    }

    line(line) {
      if (line === "") {
        if (this.data.length) this.onData(this.data.join("\n"));
        this.data = [];
        return;
      }
      if (line.startsWith(":")) return; // a comment, e.g. ": heartbeat"
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
    }
  }

  // Reads a fetch Response body to its end, calling onEvent with each parsed JSON event.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const parser = new SseParser((data) => {
      let event;
      try {
        event = JSON.parse(data);
      } catch (error) {
        return; // not JSON: nothing this page can show
      }
      onEvent(event);
    });
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(value);
    }
    parser.end();
  }

  // The reader is the piece most likely to break on a chunk boundary: the tests drive it
  // directly in the browser through this name.
  window.astrlite = { SseParser: SseParser };

  // ---- state and elements -------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const el = {
    keyForm: $("key-form"), key: $("key"), keyForget: $("key-forget"), alert: $("alert"),
    username: $("username"), config: $("config"), newChat: $("new-chat"),
    sessions: $("sessions"), more: $("more-sessions"), note: $("session-note"),
    log: $("log"), composer: $("composer"), message: $("message"), file: $("file"),
    send: $("send"), stop: $("stop"), footer: $("footer"),
  };
  const state = {
    key: sessionStorage.getItem(KEY_ITEM) || "",
    sessionId: null,
    sessionsPage: 0,
    routes: null, // the API paths the server lists in its OpenAPI document
    abort: null,
    blobUrls: [],
  };

  class ApiError extends Error {}

  function h(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(message) {
    el.alert.textContent = message;
    el.alert.hidden = false;
  }

  function clearError() {
    el.alert.hidden = true;
    el.alert.textContent = "";
  }

  function words(error) {
    if (error instanceof ApiError) return error.message;
    if (error && error.name === "AbortError") return "Stopped waiting.";
    return "Cannot reach the server (" + (error && error.message ? error.message : error) + ").";
  }

  // The envelope's message (or a 4.27 validation error's), else the status in words.
  function problem(body, status) {
    if (body && typeof body.message === "string" && body.message) return body.message;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((item) => (item && item.msg) || String(item)).join("; ");
    }
    return "The server answered HTTP " + status + ".";
  }

  async function call(path, options) {
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ "X-API-Key": state.key }, init.headers || {});
    const response = await fetch(path, init);
    const type = response.headers.get("content-type") || "";
    if (type.startsWith("application/json")) {
      let body = null;
      try {
        body = await response.json();
      } catch (error) {
        throw new ApiError(problem(null, response.status));
      }
      if (!response.ok || !body || body.status !== "ok") {
        throw new ApiError(problem(body, response.status));
      }
      return body.data;
    }
    if (!response.ok) throw new ApiError(problem(null, response.status));
    return response;
  }

  // A stored file. Downloads carry Content-Disposition and error envelopes do not, so a
  // JSON file is not mistaken for an answer.
  async function download(path) {
    const response = await fetch(path, { headers: { "X-API-Key": state.key } });
    const type = response.headers.get("content-type") || "";
    const file =
      response.headers.has("content-disposition") || !type.startsWith("application/json");
    if (response.ok && file) return response.blob();
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    throw new ApiError(problem(body, response.status));
  }

  // ---- key, username, configs ---------------------------------------------------------
  function username() {
    return el.username.value.trim();
  }

  async function useKey(key) {
    state.key = key;
    clearError();
    try {
      const data = await call("/api/v1/configs");
      fillConfigs(data.configs || []);
    } catch (error) {
      const refused = error instanceof ApiError && /API key/.test(error.message);
      if (refused && !/scope/.test(error.message)) {
        forgetKey();
        showError(error.message);
        el.key.value = "";
        el.key.focus();
        return false;
      }
      fillConfigs([]);
      el.config.firstChild.textContent = "(default; " + words(error) + ")";
    }
    sessionStorage.setItem(KEY_ITEM, key);
    el.key.value = "";
    el.key.placeholder = "key in use (this tab only)";
    await loadSessions(true);
    return true;
  }

  function forgetKey() {
    state.key = "";
    sessionStorage.removeItem(KEY_ITEM);
    el.key.placeholder = "abk_…";
  }

  function fillConfigs(configs) {
    el.config.replaceChildren();
    if (!configs.length) el.config.append(h("option", "", "(default)"));
    for (const config of configs) {
      const option = h("option", "", config.name + (config.is_default ? " (default)" : ""));
      option.value = config.id;
      option.selected = !!config.is_default;
      el.config.append(option);
    }
  }

  // ---- sessions ---------------------------------------------------------------------
  async function loadSessions(fresh) {
    const user = username();
    if (!state.key || !user) {
      el.sessions.replaceChildren();
      el.more.hidden = true;
      return;
    }
    const page = fresh ? 1 : state.sessionsPage + 1;
    const query = new URLSearchParams({
      username: user, page: String(page), page_size: String(PAGE_SIZE),
    });
    try {
      const data = await call("/api/v1/chat/sessions?" + query);
      if (fresh) el.sessions.replaceChildren();
      for (const session of data.sessions) el.sessions.append(sessionItem(session));
      state.sessionsPage = page;
      el.more.hidden = page * PAGE_SIZE >= data.total;
    } catch (error) {
      showError(words(error));
    }
  }

  function sessionItem(session) {
    const item = h("li");
    const button = h("button", "", session.display_name || session.session_id);
    button.type = "button";
    button.dataset.sessionId = session.session_id;
    button.append(h("small", "", new Date(session.updated_at).toLocaleString()));
    if (session.session_id === state.sessionId) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => openSession(session.session_id));
    item.append(button);
    return item;
  }

  function markCurrent() {
    for (const button of el.sessions.querySelectorAll("button")) {
      if (button.dataset.sessionId === state.sessionId) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  function clearLog() {
    for (const url of state.blobUrls) URL.revokeObjectURL(url);
    state.blobUrls = [];
    el.log.replaceChildren();
  }

  function newChat() {
    stopWaiting();
    state.sessionId = null;
    clearLog();
    el.note.textContent = "New chat: your first message starts a session.";
    markCurrent();
  }

  async function openSession(sessionId) {
    stopWaiting();
    state.sessionId = sessionId;
    clearLog();
    markCurrent();
    el.note.textContent = "Session " + sessionId;
    const routes = await apiRoutes();
    if (!routes.some((path) => /^\/api\/v1\/chat\/sessions\/\{[^}]+\}$/.test(path))) {
      el.note.textContent += " (this server offers no history; new messages continue it)";
      return;
    }
    try {
      const query = new URLSearchParams({ username: username() });
      const path = "/api/v1/chat/sessions/" + encodeURIComponent(sessionId);
      const data = await call(path + "?" + query);
      if (state.sessionId !== sessionId) return; // another session was opened meanwhile
      for (const row of data.history || []) showHistoryRow(row);
    } catch (error) {
      showError(words(error));
    }
    el.message.focus();
  }

  function showHistoryRow(row) {
    const content = row.content || {};
    const bot = content.type === "bot";
    const node = message(bot ? "bot" : "user");
    if (content.reasoning) folded(node, "Reasoning", content.reasoning);
    for (const part of content.message || []) {
      if (part.type === "plain") node.append(h("div", "text", part.text));
      else if (part.type === "think" && !content.reasoning) folded(node, "Reasoning", part.think);
      else if (part.type === "tool_call") {
        for (const call of part.tool_calls || []) {
          folded(node, "Tool call: " + call.name, toolText(call));
        }
      } else if (part.attachment_id) {
        media(node, part.type, part.filename || part.type).byId(part.attachment_id);
      }
    }
  }

  // ---- the conversation -------------------------------------------------------------
  function message(who) {
    const node = h("li", "msg " + who);
    node.append(h("span", "who", who === "bot" ? "Bot" : username() || "You"));
    el.log.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  function folded(parent, title, text) {
    const details = h("details");
    details.append(h("summary", "", title), h("pre", "", text));
    parent.append(details);
    return details.lastChild;
  }

  function toolText(call) {
    const lines = ["arguments: " + JSON.stringify(call.args === undefined ? {} : call.args)];
    if (call.result !== undefined) lines.push("result: " + call.result);
    return lines.join("\n");
  }

  // A picture, sound or file of the conversation, downloaded with the key.
  function media(parent, kind, name) {
    const holder = h("div", "media");
    const label = h("span", "meta", "[" + kind + ": " + name + "]");
    holder.append(label);
    parent.append(holder);
    async function fetchInto(path) {
      try {
        const url = URL.createObjectURL(await download(path));
        state.blobUrls.push(url);
        if (kind === "image") {
          const img = h("img");
          img.alt = name;
          img.src = url;
          holder.replaceChildren(img);
        } else {
          const link = h("a", "", name);
          link.href = url;
          link.download = name;
          holder.replaceChildren(link);
        }
      } catch (error) {
        label.textContent = "[" + kind + ": " + name + ": " + words(error) + "]";
      }
    }
    return {
      byId: (id) => fetchInto("/api/v1/file?attachment_id=" + encodeURIComponent(id)),
      byName: (stored) => fetchInto("/api/v1/files/content?filename=" + encodeURIComponent(stored)),
      unavailable: () => {
        label.textContent =
          "[" + kind + ": " + name + " (this server offers no download for bot media)]";
      },
    };
  }

  async function apiRoutes() {
    if (state.routes === null) {
      try {
        const response = await fetch("/api/v1/openapi.json");
        const document = await response.json();
        state.routes = Object.keys(document.paths || {});
        state.version = document.info && document.info.version;
      } catch (error) {
        state.routes = [];
      }
    }
    return state.routes;
  }

  // Renders one turn's events into a bot message as they arrive.
  class Turn {
    constructor() {
      this.node = message("bot");
      this.text = null; // the block streamed deltas append to
      this.reasoning = null;
      this.tools = new Map();
      this.pending = []; // bot media waiting for an attachment_saved event
      this.sawText = false;
    }

    textBlock(fresh) {
      if (!this.text || fresh) {
        this.text = h("div", "text");
        this.node.append(this.text);
      }
      return this.text;
    }

    event(event) {
      const type = event.type;
      if (type === "session_id") {
        if (state.sessionId !== event.session_id) {
          state.sessionId = String(event.session_id);
          el.note.textContent = "Session " + state.sessionId;
          loadSessions(true); // listed while its reply streams (if the server has it yet)
        }
      } else if (type === "plain") this.plain(event);
      else if (type === "image" || type === "record" || type === "file") this.media(event);
      else if (type === "attachment_saved") this.attachmentSaved(event.data || {});
      else if (type === "agent_stats") this.stats(event.data || {});
      else if (type === "complete") {
        if (!this.sawText && event.data) this.textBlock().textContent = event.data;
        this.resolvePending();
      } else if (type === "error") this.node.append(h("div", "error", String(event.data)));
      else if (type === "end") this.resolvePending();
      this.node.scrollIntoView({ block: "end" });
    }

    plain(event) {
      const data = event.data == null ? "" : String(event.data);
      if (event.chain_type === "reasoning") {
        if (!this.reasoning) this.reasoning = folded(this.node, "Reasoning", "");
        this.reasoning.textContent += data;
      } else if (event.chain_type === "tool_call" || event.chain_type === "tool_call_result") {
        let call = {};
        try {
          call = JSON.parse(data);
        } catch (error) {
          call = { name: "?", result: data };
        }
        const known = this.tools.get(call.id);
        if (event.chain_type === "tool_call" || !known) {
          const body = folded(this.node, "Tool call: " + (call.name || "?"), toolText(call));
          this.tools.set(call.id, { call: call, body: body });
          this.text = null;
        } else {
          known.call.result = call.result;
          known.body.textContent = toolText(known.call);
        }
      } else if (event.streaming) {
        this.sawText = true;
        this.textBlock().textContent += data;
      } else {
        this.sawText = true;
        this.textBlock(true).textContent = data;
        this.text = null;
      }
    }

    media(event) {
      const tagged = String(event.data || "");
      const stored = tagged.replace(/^\[(IMAGE|RECORD|FILE)\]/, "").split("|")[0];
      const shown = tagged.includes("|") ? tagged.split("|").slice(1).join("|") : stored;
      this.pending.push({ media: media(this.node, event.type, shown), stored: stored });
      this.text = null;
    }

    attachmentSaved(data) {
      const waiting = this.pending.shift();
      if (waiting && data.id) waiting.media.byId(data.id);
    }

    // Media the stream gave no attachment id for: by stored name, if the server offers it.
    async resolvePending() {
      const waiting = this.pending.splice(0);
      if (!waiting.length) return;
      const routes = await apiRoutes();
      for (const item of waiting) {
        if (routes.includes("/api/v1/files/content")) item.media.byName(item.stored);
        else item.media.unavailable();
      }
    }

    stats(data) {
      const usage = data.token_usage || {};
      const input = (usage.input_other || 0) + (usage.input_cached || 0);
      const output = usage.output || 0;
      this.node.append(h("div", "meta", "tokens: " + input + " in, " + output + " out"));
    }

    fail(text) {
      this.node.append(h("div", "error", text));
    }
  }

  async function upload(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    return call("/api/v1/file", { method: "POST", body: form });
  }

  async function send() {
    clearError();
    const text = el.message.value;
    const file = el.file.files[0];
    if (!state.key) return showError("Enter an API key first.");
    if (!username()) {
      el.username.focus();
      return showError("Enter a username first.");
    }
    if (!text.trim() && !file) return showError("Write a message or attach a file.");
    if (state.abort) return showError("Wait for the reply, or stop waiting first.");
    sessionStorage.setItem(USER_ITEM, username());
    const controller = new AbortController();
    state.abort = controller;
    setWaiting(true);
    const mine = message("user");
    if (text.trim()) mine.append(h("div", "text", text));
    const parts = text.trim() ? [{ type: "plain", text: text }] : [];
    let turn = null;
    let started = false;
    try {
      if (file) {
        const uploaded = await upload(file);
        parts.push({ type: uploaded.type, attachment_id: uploaded.attachment_id });
        media(mine, uploaded.type, uploaded.filename).byId(uploaded.attachment_id);
        el.file.value = "";
      }
      el.message.value = "";
      const body = { username: username(), message: parts };
      started = !state.sessionId;
      if (state.sessionId) body.session_id = state.sessionId;
      if (el.config.value) body.config_id = el.config.value;
      const response = await call("/api/v1/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      turn = new Turn();
      await readEvents(response, (event) => turn.event(event));
      await turn.resolvePending();
    } catch (error) {
      const said = words(error);
      if (error && error.name === "AbortError") {
        const note = "Stopped waiting; the server still finishes and saves the reply.";
        (turn ? turn.node : mine).append(h("div", "meta", note));
      } else {
        (turn ? turn.node : mine).append(h("div", "error", said));
        showError(said);
        if (!turn && !el.message.value) el.message.value = text; // nothing typed is lost
      }
    } finally {
      if (state.abort === controller) state.abort = null;
      setWaiting(false);
    }
    // A new session, named after its first message: list it (also when the wait was stopped).
    if (started && state.sessionId) await loadSessions(true);
  }

  function setWaiting(waiting) {
    el.stop.disabled = !waiting;
    el.send.disabled = waiting;
  }

  function stopWaiting() {
    if (state.abort) state.abort.abort();
  }

  // ---- footer: health and version -----------------------------------------------------
  // /health answers {"status": "ok" | "error", "message"?, "version", "uptime_seconds"}
  // with 200 or 503; a server without it still names its version in the OpenAPI document.
  async function footer() {
    let health = null;
    try {
      const response = await fetch("/health", { cache: "no-store" });
      const type = response.headers.get("content-type") || "";
      const answered = response.status === 200 || response.status === 503;
      if (answered && type.startsWith("application/json")) {
        health = await response.json();
      }
    } catch (error) {
      health = null;
    }
    await apiRoutes();
    const version = (health && health.version) || state.version;
    const parts = [];
    if (health) {
      parts.push("Server: " + (health.status === "ok" ? "healthy" : "unhealthy"));
      if (health.status !== "ok" && health.message) parts.push(String(health.message));
    } else {
      parts.push(state.version ? "Server: reachable" : "Server: not reachable");
    }
    if (version) parts.push("astrlite " + version);
    if (health && typeof health.uptime_seconds === "number") {
      parts.push("up " + uptime(health.uptime_seconds));
    }
    el.footer.textContent = parts.join(" · ");
  }

  function uptime(seconds) {
    if (seconds < 60) return Math.floor(seconds) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }

  // ---- wiring -----------------------------------------------------------------------
  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = el.key.value.trim();
    if (key) useKey(key);
  });
  el.keyForget.addEventListener("click", () => {
    forgetKey();
    el.sessions.replaceChildren();
    el.key.focus();
  });
  // Sessions belong to the user who started them: another name starts afresh.
  el.username.addEventListener("change", () => {
    sessionStorage.setItem(USER_ITEM, username());
    newChat();
    loadSessions(true);
  });
  el.newChat.addEventListener("click", () => {
    newChat();
    el.message.focus();
  });
  el.more.addEventListener("click", () => loadSessions(false));
  el.stop.addEventListener("click", stopWaiting);
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  el.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });

  el.username.value = sessionStorage.getItem(USER_ITEM) || "";
  footer();
  if (state.key) useKey(state.key);
  else el.key.focus();
})();
