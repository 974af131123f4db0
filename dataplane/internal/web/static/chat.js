// MindRouter chat: sends a message to /chat/send and shows the reply as it
// streams (server-sent events over fetch); the stop button aborts the fetch,
// which cancels the request upstream. While streaming the reply is plain text;
// when it ends the server's sanitized HTML replaces it.
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  if (!form) return;
  var list = document.getElementById("messages");
  var input = document.getElementById("chat-input");
  var model = document.getElementById("chat-model");
  var think = document.getElementById("chat-think");
  var send = document.getElementById("chat-send");
  var stop = document.getElementById("chat-stop");
  var status = document.getElementById("chat-status");
  var note = document.getElementById("trim-note");
  var file = document.getElementById("chat-file");
  var attach = document.getElementById("chat-attach");
  var shelf = document.getElementById("chat-attachments");
  var controller = null;
  // Images to send: {name, url}. The server enforces the same limits.
  var images = [];
  var TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
  var MAX_IMAGES = 4, MAX_IMAGE = 2 << 20, MAX_TOTAL = 3 << 20;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function bubble(role, who) {
    var li = el("article", "msg " + role);
    li.appendChild(el("p", "who", who));
    list.appendChild(li);
    return li;
  }
  function busy(on) {
    send.disabled = on;
    stop.disabled = !on;
    list.setAttribute("aria-busy", on ? "true" : "false");
  }
  function syncThink() {
    var o = model.options[model.selectedIndex];
    think.disabled = !o || o.getAttribute("data-think") !== "true";
    if (think.disabled) think.checked = false;
    attach.disabled = !o || o.getAttribute("data-vision") !== "true";
    if (attach.disabled && images.length) {
      images = [];
      showImages();
      status.textContent = "Images removed: this model does not accept images.";
    }
  }
  function thumbs(ul, list, removable) {
    ul.textContent = "";
    list.forEach(function (im, i) {
      var li = el("li");
      var img = el("img");
      img.src = im.url;
      img.alt = im.name;
      li.appendChild(img);
      if (removable) {
        var b = el("button", "secondary", "Remove");
        b.type = "button";
        b.setAttribute("aria-label", "Remove " + im.name);
        b.addEventListener("click", function () {
          images.splice(i, 1);
          showImages();
          status.textContent = im.name + " removed.";
          attach.focus();
        });
        li.appendChild(b);
      }
      ul.appendChild(li);
    });
    ul.hidden = list.length === 0;
  }
  function showImages() {
    thumbs(shelf, images, true);
    input.required = images.length === 0;
  }
  function addFiles(files) {
    if (attach.disabled) {
      status.textContent = "This model does not accept images; choose a vision model.";
      return;
    }
    Array.prototype.forEach.call(files, function (f) {
      var total = images.reduce(function (n, im) { return n + im.size; }, 0);
      var why = TYPES.indexOf(f.type) < 0 ? "is not a PNG, JPEG, WebP or GIF image" :
        images.length >= MAX_IMAGES ? "is one too many (at most 4 images)" :
        f.size > MAX_IMAGE ? "is larger than 2 MiB" :
        total + f.size > MAX_TOTAL ? "would take the images over 3 MiB together" : "";
      if (why) {
        status.textContent = f.name + " " + why + ".";
        return;
      }
      var im = { name: f.name || "pasted image", size: f.size, url: "" };
      images.push(im);
      var r = new FileReader();
      r.onload = function () {
        im.url = r.result;
        showImages();
        status.textContent = im.name + " attached.";
      };
      r.onerror = function () {
        images.splice(images.indexOf(im), 1);
        showImages();
        status.textContent = im.name + " could not be read.";
      };
      r.readAsDataURL(f);
    });
  }
  attach.addEventListener("click", function () { file.click(); });
  file.addEventListener("change", function () {
    addFiles(file.files);
    file.value = "";
  });
  input.addEventListener("paste", function (e) {
    var fs = e.clipboardData && e.clipboardData.files;
    if (fs && fs.length) {
      e.preventDefault();
      addFiles(fs);
    }
  });
  form.addEventListener("dragover", function (e) { e.preventDefault(); });
  form.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer) addFiles(e.dataTransfer.files);
  });
  model.addEventListener("change", syncThink);
  syncThink();

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!send.disabled) form.requestSubmit();
    }
  });
  stop.addEventListener("click", function () {
    if (controller) controller.abort();
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (images.some(function (im) { return !im.url; })) {
      status.textContent = "Still reading the images; send again in a moment.";
      return;
    }
    var sent = images;
    if ((!text && !sent.length) || !model.value) return;
    var user = bubble("user", "You");
    if (text) user.appendChild(el("div", "body plain", text));
    if (sent.length) {
      var ul = el("ul", "thumbs");
      ul.setAttribute("aria-label", "Attached images");
      thumbs(ul, sent, false);
      user.appendChild(ul);
    }
    images = [];
    showImages();
    var reply = bubble("assistant", "Assistant · " + model.value);
    var thinking = null, thinkingText = null;
    var body = el("div", "body plain");
    reply.appendChild(body);
    input.value = "";
    busy(true);
    status.textContent = "Waiting for the model…";
    controller = new AbortController();
    var ended = false;

    function handle(name, d) {
      if (name === "start") {
        form.setAttribute("data-conversation", String(d.conversation_id));
        if (location.pathname !== "/chat/" + d.conversation_id) history.replaceState(null, "", "/chat/" + d.conversation_id);
        if (d.dropped > 0) {
          note.textContent = d.dropped + " older message" + (d.dropped === 1 ? " was" : "s were") +
            " left out to fit the model's context window (" + d.context_length + " tokens).";
          note.hidden = false;
        } else {
          note.hidden = true;
        }
        status.textContent = "Answering…";
      } else if (name === "delta") {
        if (d.reasoning) {
          if (!thinking) {
            thinking = el("details", "thinking");
            thinking.appendChild(el("summary", "", "Thinking"));
            thinkingText = el("div", "md plain");
            thinking.appendChild(thinkingText);
            reply.insertBefore(thinking, body);
          }
          thinkingText.textContent += d.reasoning;
        }
        if (d.content) body.textContent += d.content;
      } else if (name === "done") {
        ended = true;
        body.className = "body md";
        body.innerHTML = d.html; // sanitized by the server
        if (thinking && d.reasoning_html) {
          thinkingText.className = "md";
          thinkingText.innerHTML = d.reasoning_html;
        }
        status.textContent = "Done: " + d.prompt_tokens + " prompt and " + d.completion_tokens + " reply tokens.";
      } else if (name === "error") {
        ended = true;
        reply.classList.add("failed");
        reply.appendChild(el("p", "error", d.message));
        status.textContent = "The reply failed.";
      }
    }

    fetch("/chat/send", {
      method: "POST", credentials: "same-origin", signal: controller.signal,
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRF-Token": form.getAttribute("data-csrf") },
      body: JSON.stringify({ conversation_id: Number(form.getAttribute("data-conversation")) || 0, model: model.value, content: text, think: think.checked,
        images: sent.map(function (im) { return { name: im.name, url: im.url }; }) })
    }).then(function (r) {
      var conv = r.headers.get("X-Mindrouter-Conversation");
      if (conv) form.setAttribute("data-conversation", conv);
      if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("text/event-stream") !== 0) {
        return r.json().then(function (j) {
          handle("error", { message: (j && j.error && j.error.message) || ("HTTP " + r.status) });
        }, function () { handle("error", { message: "HTTP " + r.status }); });
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      var buf = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buf += decoder.decode(chunk.value, { stream: true });
          var i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var name = "message", data = "";
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) name = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            if (data) handle(name, JSON.parse(data));
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      if (err && err.name === "AbortError") {
        ended = true;
        reply.classList.add("stopped");
        reply.appendChild(el("p", "muted", "Stopped before the end."));
        status.textContent = "Stopped.";
        return;
      }
      handle("error", { message: "The connection was lost." });
    }).then(function () {
      if (!ended) handle("error", { message: "The reply ended early." });
      controller = null;
      busy(false);
      input.focus();
    });
  });
})();
