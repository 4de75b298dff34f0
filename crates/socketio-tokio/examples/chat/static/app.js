// The chat page: plain DOM, no framework. The event contract it speaks is in
// the example's README.md.
"use strict";

(() => {
  const ACK_TIMEOUT = 10000;
  const TYPING_SEND_EVERY = 2000;
  const TYPING_SHOWN_FOR = 3000;
  const GROUP_WITHIN = 5 * 60 * 1000;
  const KEEP_MESSAGES = 500;
  const STORAGE_KEY = "chat-session";

  const $ = (id) => document.getElementById(id);
  const el = {
    banner: $("banner"),
    bannerText: $("banner-text"),
    login: $("login"),
    loginForm: $("login-form"),
    nameInput: $("name-input"),
    roomInput: $("room-input"),
    loginError: $("login-error"),
    app: $("app"),
    rooms: $("rooms"),
    joinForm: $("join-form"),
    joinInput: $("join-input"),
    meAvatar: $("me-avatar"),
    meName: $("me-name"),
    statusDot: $("status-dot"),
    statusText: $("status-text"),
    renameButton: $("rename-button"),
    roomTitle: $("room-title"),
    roomSubtitle: $("room-subtitle"),
    leaveButton: $("leave-button"),
    empty: $("empty"),
    messages: $("messages"),
    typing: $("typing"),
    composer: $("composer"),
    composerInput: $("composer-input"),
    members: $("members"),
    memberCount: $("member-count"),
    toast: $("toast"),
  };

  // ----- state -----

  const state = {
    name: "",
    // room name -> { members: [names], items: [messages and notices], joined,
    //               typing: Map(name -> timer), unread, draft }
    rooms: new Map(),
    active: null,
    // Messages written while their room was not (re)joined yet.
    outbox: [],
    lastTypingSent: 0,
  };
  let localSeq = 0;

  function save() {
    const data = { name: state.name, rooms: [...state.rooms.keys()], active: state.active };
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(data));
    } catch (_) {
      // Private mode and the like: the session is just not restored.
    }
  }

  function restore() {
    try {
      const data = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      if (data && typeof data.name === "string" && Array.isArray(data.rooms)) return data;
    } catch (_) {
      // Ignore a damaged session.
    }
    return null;
  }

  function newRoom() {
    return { members: [], items: [], joined: false, typing: new Map(), unread: 0, draft: "" };
  }

  // ----- connection -----

  const socket = io({ autoConnect: false });
  // The banner is for a lost connection, not for the first one being made.
  let everConnected = false;
  let connectFailed = false;

  socket.on("connect", () => {
    everConnected = true;
    setConnected(true);
    if (socket.recovered) {
      // The server kept this page's session: it is still in its rooms and
      // got what it missed meanwhile, in order. Rooms added while offline
      // are joined now.
      for (const [room, r] of state.rooms) {
        if (!r.wasJoined) {
          sendJoin(room);
          continue;
        }
        r.joined = true;
        push(room, notice("Reconnected: missed messages recovered"));
        flushOutbox(room);
      }
      render();
      return;
    }
    for (const room of state.rooms.keys()) sendJoin(room);
  });

  socket.on("connect_error", () => {
    connectFailed = true;
    setConnected(false);
  });

  socket.on("disconnect", (reason) => {
    setConnected(false);
    for (const r of state.rooms.values()) {
      r.wasJoined = r.joined;
      r.joined = false;
      for (const t of r.typing.values()) clearTimeout(t);
      r.typing.clear();
    }
    if (state.name) render();
    // After a server-side disconnect the client does not retry on its own.
    if (reason === "io server disconnect") socket.connect();
  });

  socket.io.on("reconnect_attempt", (attempt) => {
    el.bannerText.textContent = `Connection lost. Reconnecting… (attempt ${attempt})`;
  });

  function setConnected(up) {
    const lost = !up && (everConnected || connectFailed);
    el.banner.hidden = !lost || el.app.hidden;
    if (up) el.bannerText.textContent = "Connection lost. Reconnecting…";
    if (!everConnected && connectFailed) el.bannerText.textContent = "Cannot reach the server. Retrying…";
    document.body.classList.toggle("offline", lost);
    el.statusDot.classList.toggle("online", up);
    el.statusText.textContent = up ? "Online" : (lost ? "Reconnecting…" : "Connecting…");
  }

  function sendJoin(room) {
    socket.timeout(ACK_TIMEOUT).emit("join", { room, name: state.name }, (err, res) => {
      const r = state.rooms.get(room);
      if (!r) return;
      if (err) return; // Timed out: the next connection joins again.
      if (!res || !res.ok) {
        state.rooms.delete(room);
        if (state.active === room) state.active = firstRoom();
        toast(`Cannot join “${room}”: ${res ? res.error : "no answer"}`);
        save();
        render();
        return;
      }
      r.joined = true;
      r.members = res.members.slice();
      mergeHistory(r, res.history);
      flushOutbox(room);
      render();
    });
  }

  function mergeHistory(r, history) {
    const known = new Set(r.items.filter((m) => m.id).map((m) => m.id));
    const missed = history.filter((m) => !known.has(m.id));
    if (missed.length === 0) return;
    const pending = r.items.filter((m) => m.status === "sending" || m.status === "failed");
    const settled = r.items.filter((m) => !pending.includes(m));
    for (const m of missed) settled.push(message(m));
    settled.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    r.items = settled.concat(pending).slice(-KEEP_MESSAGES);
  }

  // A message from the server. Messages under this page's own name (from
  // another tab, or from before a reload) are shown as its own.
  function message(m) {
    return {
      kind: "message", seq: ++localSeq, id: m.id, room: m.room, name: m.name, text: m.text,
      ts: m.ts, own: m.name === state.name, status: "sent",
    };
  }

  function notice(text) {
    return { kind: "notice", seq: ++localSeq, text, ts: Date.now() };
  }

  function push(room, item) {
    const r = state.rooms.get(room);
    if (!r) return;
    r.items.push(item);
    if (r.items.length > KEEP_MESSAGES) r.items.splice(0, r.items.length - KEEP_MESSAGES);
    if (room !== state.active && item.kind === "message") r.unread += 1;
  }

  socket.on("message", (m) => {
    const r = state.rooms.get(m.room);
    if (!r || r.items.some((x) => x.id === m.id)) return;
    stopTyping(r, m.name);
    push(m.room, message(m));
    render();
  });

  socket.on("joined", ({ room, name }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    r.members.push(name);
    push(room, notice(`${name} joined`));
    render();
  });

  socket.on("left", ({ room, name }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    const i = r.members.indexOf(name);
    if (i >= 0) r.members.splice(i, 1);
    stopTyping(r, name);
    push(room, notice(`${name} left`));
    render();
  });

  socket.on("typing", ({ room, name }) => {
    const r = state.rooms.get(room);
    if (!r) return;
    clearTimeout(r.typing.get(name));
    r.typing.set(name, setTimeout(() => stopTyping(r, name), TYPING_SHOWN_FOR));
    if (room === state.active) renderTyping();
  });

  function stopTyping(r, name) {
    if (!r.typing.has(name)) return;
    clearTimeout(r.typing.get(name));
    r.typing.delete(name);
    renderTyping();
  }

  // ----- actions -----

  function enter(name, room) {
    state.name = name;
    addRoom(room);
    save();
    showApp();
  }

  function addRoom(room) {
    if (!state.rooms.has(room)) {
      state.rooms.set(room, newRoom());
      if (socket.connected) sendJoin(room);
    }
    switchTo(room);
  }

  function leaveRoom(room) {
    if (!state.rooms.has(room)) return;
    if (socket.connected) socket.emit("leave", { room });
    const r = state.rooms.get(room);
    for (const t of r.typing.values()) clearTimeout(t);
    state.rooms.delete(room);
    state.outbox = state.outbox.filter((m) => m.room !== room);
    if (state.active === room) state.active = firstRoom();
    save();
    render();
  }

  function firstRoom() {
    const first = state.rooms.keys().next();
    return first.done ? null : first.value;
  }

  function switchTo(room) {
    const current = state.rooms.get(state.active);
    if (current) current.draft = el.composerInput.value;
    state.active = room;
    const r = state.rooms.get(room);
    if (r) {
      r.unread = 0;
      el.composerInput.value = r.draft;
    }
    save();
    render(true);
    el.composerInput.focus();
  }

  function send(text) {
    const room = state.active;
    const r = state.rooms.get(room);
    if (!r) return;
    const m = {
      kind: "message", seq: ++localSeq, id: null, room, name: state.name, text,
      ts: Date.now(), own: true, status: "sending",
    };
    r.items.push(m);
    if (r.joined && socket.connected) emitMessage(m);
    else state.outbox.push(m);
    render(true);
  }

  function emitMessage(m) {
    m.status = "sending";
    socket.timeout(ACK_TIMEOUT).emit("message", { room: m.room, text: m.text }, (err, res) => {
      if (err) {
        m.status = "failed";
        m.error = "no answer from the server";
      } else if (res && res.ok) {
        m.status = "sent";
        m.id = res.id;
        if (typeof res.ts === "number") m.ts = res.ts;
      } else {
        m.status = "failed";
        m.error = res ? res.error : "refused";
        toast(`Not sent: ${m.error}`);
      }
      updateStatus(m);
    });
  }

  function flushOutbox(room) {
    const ready = state.outbox.filter((m) => m.room === room);
    state.outbox = state.outbox.filter((m) => m.room !== room);
    for (const m of ready) emitMessage(m);
  }

  function retry(m) {
    const r = state.rooms.get(m.room);
    if (!r) return;
    m.status = "sending";
    if (r.joined && socket.connected) emitMessage(m);
    else state.outbox.push(m);
    updateStatus(m);
  }

  function rename(name) {
    state.name = name;
    save();
    // Joining a room again under another name renames this socket there.
    if (socket.connected) for (const room of state.rooms.keys()) sendJoin(room);
    render();
  }

  // ----- rendering -----

  const PALETTE = ["#5b5bd6", "#0e9f6e", "#d9485f", "#e08a00", "#0b84a5", "#8e44ad", "#c2410c", "#0f766e"];

  function colorOf(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  function initials(name) {
    const parts = name.trim().split(/\s+/).filter(Boolean);
    const letters = parts.length > 1 ? [parts[0], parts[parts.length - 1]] : [name.trim()];
    return letters.map((p) => [...p][0] || "").join("").toUpperCase() || "?";
  }

  function avatar(name, node = document.createElement("span")) {
    node.className = "avatar";
    node.textContent = initials(name);
    node.style.background = colorOf(name);
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function h(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(scrollToEnd = false) {
    el.meName.textContent = state.name;
    avatar(state.name || "?", el.meAvatar);
    renderRooms();
    const r = state.rooms.get(state.active);
    el.empty.hidden = !!r;
    el.messages.hidden = !r;
    el.composer.hidden = !r;
    el.leaveButton.hidden = !r;
    el.typing.hidden = !r;
    el.roomTitle.replaceChildren(...(r ? [h("span", "hash", "#"), state.active] : []));
    el.roomSubtitle.textContent = r
      ? (r.joined ? plural(r.members.length, "member") : (socket.connected ? "Joining…" : "Offline"))
      : "";
    renderMessages(r, scrollToEnd);
    renderMembers(r);
    renderTyping();
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function renderRooms() {
    el.rooms.replaceChildren(...[...state.rooms.entries()].map(([name, r]) => {
      const li = h("li", "room-item" + (name === state.active ? " active" : ""));
      li.dataset.room = name;
      const button = h("button", "room-button");
      button.type = "button";
      button.append(h("span", "hash", "#"), h("span", "room-name", name));
      if (r.unread > 0) button.append(h("span", "badge", String(r.unread)));
      button.addEventListener("click", () => switchTo(name));
      li.append(button);
      return li;
    }));
  }

  function renderMessages(r, scrollToEnd) {
    const list = el.messages;
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (!r) {
      list.replaceChildren();
      return;
    }
    const nodes = [];
    let prev = null;
    for (const m of r.items) {
      if (m.kind === "notice") {
        nodes.push(h("li", "notice", m.text));
        prev = null;
        continue;
      }
      const grouped = prev && prev.name === m.name && prev.own === m.own && m.ts - prev.ts < GROUP_WITHIN;
      nodes.push(messageNode(m, !grouped));
      prev = m;
    }
    list.replaceChildren(...nodes);
    if (scrollToEnd || nearEnd) list.scrollTop = list.scrollHeight;
  }

  function messageNode(m, first) {
    const li = h("li", `message${m.own ? " own" : ""}${first ? " first" : ""}`);
    li.dataset.name = m.name;
    li.dataset.status = m.status;
    if (m.id) li.dataset.id = m.id;
    li.dataset.seq = String(m.seq);
    if (!m.own) {
      const slot = h("div", "avatar-slot");
      if (first) slot.append(avatar(m.name));
      li.append(slot);
    }
    const body = h("div", "body");
    if (first) {
      const meta = h("div", "meta");
      if (!m.own) {
        const who = h("span", "who", m.name);
        who.style.color = colorOf(m.name);
        meta.append(who);
      }
      meta.append(h("time", "time", timeFormat.format(new Date(m.ts))));
      body.append(meta);
    }
    body.append(h("div", "bubble text", m.text));
    if (m.own) body.append(statusNode(m));
    li.append(body);
    return li;
  }

  function statusNode(m) {
    const labels = { sending: "Sending…", sent: "Sent", failed: "Not sent · retry" };
    const s = h("div", `status ${m.status}`, labels[m.status]);
    if (m.status === "failed") {
      s.title = m.error || "";
      s.setAttribute("role", "button");
      s.tabIndex = 0;
      s.addEventListener("click", () => retry(m));
    }
    return s;
  }

  function updateStatus(m) {
    if (m.room !== state.active) return;
    const li = el.messages.querySelector(`li[data-seq="${m.seq}"]`);
    if (!li) return;
    li.dataset.status = m.status;
    if (m.id) li.dataset.id = m.id;
    li.querySelector(".status").replaceWith(statusNode(m));
  }

  function renderMembers(r) {
    const members = r ? r.members : [];
    const counts = new Map();
    for (const n of members) counts.set(n, (counts.get(n) || 0) + 1);
    const names = [...counts.keys()].sort((a, b) => {
      if (a === state.name) return -1;
      if (b === state.name) return 1;
      return a.localeCompare(b);
    });
    el.memberCount.textContent = r ? String(names.length) : "";
    el.members.replaceChildren(...names.map((n) => {
      const li = h("li", "member");
      li.dataset.name = n;
      const who = h("span", "member-name", n);
      li.append(avatar(n), who);
      if (n === state.name) who.append(h("span", "you", " (you)"));
      if (counts.get(n) > 1) li.append(h("span", "count", `×${counts.get(n)}`));
      li.append(h("span", "dot online"));
      return li;
    }));
  }

  function renderTyping() {
    const r = state.rooms.get(state.active);
    const names = r ? [...r.typing.keys()] : [];
    el.typing.replaceChildren();
    el.typing.classList.toggle("active", names.length > 0);
    if (names.length === 0) return;
    let text;
    if (names.length === 1) text = `${names[0]} is typing`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing`;
    else text = "Several people are typing";
    const dots = h("span", "dots");
    dots.append(h("i"), h("i"), h("i"));
    el.typing.append(dots, h("span", "typing-text", text));
  }

  let toastTimer = null;
  function toast(text) {
    el.toast.textContent = text;
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.toast.hidden = true; }, 4000);
  }

  function showLogin() {
    el.app.hidden = true;
    el.login.hidden = false;
    el.banner.hidden = true;
    el.nameInput.focus();
  }

  function showApp() {
    el.login.hidden = true;
    el.app.hidden = false;
    setConnected(socket.connected);
    render(true);
  }

  // ----- inputs -----

  function checkLabel(value, what) {
    if (!value) return `Your ${what} must not be empty.`;
    if ([...value].length > 64) return `Your ${what} is longer than 64 characters.`;
    return null;
  }

  el.loginForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = el.nameInput.value.trim();
    const room = el.roomInput.value.trim();
    const problem = checkLabel(name, "name") || (state.name ? null : checkLabel(room, "room"));
    el.loginError.hidden = !problem;
    el.loginError.textContent = problem || "";
    if (problem) return;
    if (state.name) {
      // Renaming from the app.
      el.login.hidden = true;
      el.app.hidden = false;
      rename(name);
      setConnected(socket.connected);
      return;
    }
    enter(name, room);
  });

  el.renameButton.addEventListener("click", () => {
    // The same form, without the room.
    el.loginForm.querySelector('label[for="room-input"]').hidden = true;
    el.roomInput.hidden = true;
    el.loginForm.querySelector("h1").textContent = "Change your name";
    el.loginForm.querySelector("p.muted").textContent = "Your rooms will see the new name.";
    el.loginForm.querySelector("#login-submit").textContent = "Save";
    el.nameInput.value = state.name;
    showLogin();
  });

  el.joinForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const room = el.joinInput.value.trim();
    const problem = checkLabel(room, "room");
    if (problem) return toast(problem.replace("Your room", "The room name"));
    el.joinInput.value = "";
    addRoom(room);
  });

  el.leaveButton.addEventListener("click", () => {
    if (state.active) leaveRoom(state.active);
  });

  el.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = el.composerInput.value.trim();
    if (!text) return;
    if ([...text].length > 2000) return toast("A message has at most 2000 characters.");
    el.composerInput.value = "";
    autosize();
    state.lastTypingSent = 0;
    send(text);
  });

  el.composerInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      el.composer.requestSubmit();
    }
  });

  el.composerInput.addEventListener("input", () => {
    autosize();
    const r = state.rooms.get(state.active);
    const now = Date.now();
    if (r && r.joined && socket.connected && el.composerInput.value.trim() &&
        now - state.lastTypingSent > TYPING_SEND_EVERY) {
      state.lastTypingSent = now;
      socket.emit("typing", { room: state.active });
    }
  });

  function autosize() {
    const t = el.composerInput;
    t.style.height = "auto";
    t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
  }

  // ----- start -----

  const saved = restore();
  if (saved && saved.name) {
    state.name = saved.name;
    for (const room of saved.rooms) state.rooms.set(room, newRoom());
    state.active = saved.rooms.includes(saved.active) ? saved.active : firstRoom();
    showApp();
  } else {
    showLogin();
  }
  socket.connect();
})();
