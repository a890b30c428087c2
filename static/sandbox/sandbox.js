// The sandbox page: press digits or hang up as the callee, and keep the call list fresh.
// Everything shown is set with textContent (never innerHTML), so call data cannot inject
// markup.  Requests reuse the page's HTTP Basic credentials (same origin) and send JSON.
(function () {
  "use strict";

  var main = document.getElementById("calls");
  var status = document.getElementById("status");
  if (!main) {
    return;
  }
  var callsUrl = main.getAttribute("data-calls-url");
  var controlUrl = main.getAttribute("data-control-url").replace(/\/$/, "");
  var KEYS = "123456789*0#";
  var openLogs = {};
  // What the last key or hang-up did, per call: shown under that call's keypad (never over
  // it) and kept across the list's refreshes.
  var notes = {};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function code(text) {
    return el("code", null, text);
  }

  function say(text) {
    status.textContent = text;
  }

  function noteOf(section) {
    var note = section.querySelector(".note");
    if (!note) {
      note = el("p", "note");
      note.setAttribute("role", "status");
      var details = section.querySelector("details");
      section.insertBefore(note, details);
    }
    return note;
  }

  function note(callId, text) {
    notes[callId] = text;
    var section = main.querySelector('[data-call-id="' + CSS.escape(callId) + '"]');
    if (section) {
      noteOf(section).textContent = text;
    }
  }

  function post(callId, action, body) {
    var url = controlUrl + "/calls/" + encodeURIComponent(callId) + "/" + action;
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (reply) {
      return reply.json().then(function (data) {
        if (!reply.ok) {
          throw new Error(data.description || ("HTTP " + reply.status));
        }
        return data;
      });
    });
  }

  function renderCall(call) {
    var section = el("section", "call" + (call.active ? " active" : ""));
    section.setAttribute("data-call-id", call.callId);
    var title = el("h2");
    title.appendChild(code(call.callId));
    section.appendChild(title);

    var meta = el("p", "meta");
    if (call.parentCallId) {
      meta.appendChild(document.createTextNode("B-leg of "));
      meta.appendChild(code(call.parentCallId));
      meta.appendChild(document.createTextNode(" · "));
    }
    meta.appendChild(document.createTextNode(call.from + " → " + call.to + " · "));
    meta.appendChild(el("strong", "state", call.state));
    if (call.activity) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", "activity", call.activity));
    }
    if (call.disconnectCause) {
      meta.appendChild(document.createTextNode(" · cause "));
      meta.appendChild(el("strong", null, call.disconnectCause));
    }
    if (call.tag) {
      meta.appendChild(document.createTextNode(" · tag "));
      meta.appendChild(code(call.tag));
    }
    section.appendChild(meta);
    if (call.errorMessage) {
      section.appendChild(el("p", "error", call.errorMessage));
    }
    if (call.transcript && call.transcript.length) {
      // What the caller heard, pressed and said, at the call's simulated clock.
      var heard = el("ol", "transcript");
      heard.setAttribute("aria-label", "What the caller heard");
      call.transcript.forEach(function (entry) {
        var item = el("li", entry.kind);
        item.appendChild(el("time", null, Number(entry.at).toFixed(1) + " s"));
        item.appendChild(document.createTextNode(" " + entry.line));
        heard.appendChild(item);
      });
      section.appendChild(heard);
    }
    if (call.active) {
      var keypad = el("div", "keypad");
      for (var i = 0; i < KEYS.length; i++) {
        var key = el("button", "digit", KEYS.charAt(i));
        key.type = "button";
        key.setAttribute("data-digit", KEYS.charAt(i));
        keypad.appendChild(key);
      }
      var hangup = el("button", "hangup", "Hang up");
      hangup.type = "button";
      keypad.appendChild(hangup);
      section.appendChild(keypad);
    }
    if (notes[call.callId]) {
      var said = el("p", "note", notes[call.callId]);
      said.setAttribute("role", "status");
      section.appendChild(said);
    }
    var details = el("details");
    details.open = Boolean(openLogs[call.callId]);
    details.appendChild(el("summary", null, "Log (" + call.log.length + ")"));
    var list = el("ol", "log");
    call.log.forEach(function (line) {
      var item = el("li");
      item.appendChild(el("time", null, line.at));
      item.appendChild(document.createTextNode(" " + line.text));
      list.appendChild(item);
    });
    details.appendChild(list);
    details.addEventListener("toggle", function () {
      openLogs[call.callId] = details.open;
    });
    section.appendChild(details);
    return section;
  }

  function refresh() {
    fetch(callsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (reply) {
        if (!reply.ok) {
          throw new Error("HTTP " + reply.status);
        }
        return reply.json();
      })
      .then(function (data) {
        var fragment = document.createDocumentFragment();
        data.calls.forEach(function (call) {
          fragment.appendChild(renderCall(call));
        });
        if (!data.calls.length) {
          fragment.appendChild(el("p", "empty", "No calls yet. Create one with the Voice API."));
        }
        main.replaceChildren(fragment);
        say("");
      })
      .catch(function (error) {
        say("Refresh failed: " + error.message);
      });
  }

  main.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) {
      return;
    }
    var section = button.closest("[data-call-id]");
    var callId = section.getAttribute("data-call-id");
    var done;
    if (button.classList.contains("hangup")) {
      done = post(callId, "hangup").then(function () {
        note(callId, "Hung up.");
      });
    } else {
      var digit = button.getAttribute("data-digit");
      done = post(callId, "digits", { digits: digit }).then(function () {
        note(callId, "Pressed " + digit + ".");
      });
    }
    done.then(refresh).catch(function (error) {
      note(callId, error.message);
    });
  });

  document.querySelectorAll("details").forEach(function (details) {
    var section = details.closest("[data-call-id]");
    details.addEventListener("toggle", function () {
      openLogs[section.getAttribute("data-call-id")] = details.open;
    });
  });

  // Dial in: the keypad types into "Number called"; the button calls the app.
  var dialIn = document.getElementById("dial-in");
  if (dialIn) {
    var called = dialIn.elements.namedItem("to");
    var dialed = document.getElementById("dial-status");
    dialIn.addEventListener("click", function (event) {
      var key = event.target.closest("button.dial-digit");
      if (key) {
        called.value += key.getAttribute("data-digit");
      }
    });
    dialIn.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { to: called.value.trim(), from: dialIn.elements.namedItem("from").value.trim() };
      fetch(dialIn.getAttribute("data-inbound-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      })
        .then(function (reply) {
          return reply.json().then(function (data) {
            if (!reply.ok) {
              throw new Error(data.description || ("HTTP " + reply.status));
            }
            dialed.textContent = "Calling " + body.to + ": " + data.callId + " (application " + data.applicationId + ")";
            refresh();
          });
        })
        .catch(function (error) {
          dialed.textContent = error.message;
        });
    });
  }

  window.setInterval(refresh, 1500);
})();
