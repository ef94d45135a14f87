// The page of GET /: submits the city picker on change, and while the city's answer is
// incomplete follows /movies/events to fill the server-rendered cards in as details land.
// Text goes in with textContent only: nothing from the data is ever parsed as HTML.
"use strict";

(function () {
  function joined(list) {
    return Array.isArray(list) ? list.join(" / ") : "";
  }

  // A poster that does not load is replaced by an empty grey box: no broken-image mark.
  function watchPoster(img) {
    function blank() {
      var box = document.createElement("div");
      box.className = "poster";
      if (img.parentNode) img.parentNode.replaceChild(box, img);
    }
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) blank();
    else img.addEventListener("error", blank);
  }

  function setText(card, cls, text) {
    var el = card.querySelector("." + cls);
    if (el) el.textContent = text == null ? "" : String(text);
  }

  // Makes an empty card with the fields page.c writes.
  function makeCard(movie) {
    var li = document.createElement("li");
    li.className = "card";
    var img = document.createElement("img");
    img.className = "poster";
    img.alt = "";
    img.width = 135;
    img.height = 200;
    img.loading = "lazy";
    watchPoster(img);
    img.src = "/posters/" + encodeURIComponent(movie.id);
    li.appendChild(img);
    var info = document.createElement("div");
    info.className = "info";
    var h2 = document.createElement("h2");
    h2.className = "title";
    h2.appendChild(document.createElement("a"));
    info.appendChild(h2);
    ["date", "genres", "regions", "directors"].forEach(function (cls) {
      var p = document.createElement("p");
      p.className = cls;
      info.appendChild(p);
    });
    var numbers = document.createElement("p");
    numbers.className = "numbers";
    ["wish", "rating"].forEach(function (cls) {
      var s = document.createElement("span");
      s.className = cls;
      numbers.appendChild(s);
    });
    info.appendChild(numbers);
    li.appendChild(info);
    return li;
  }

  // Writes a movie's fields into its card.
  function fill(card, movie) {
    card.id = "m-" + movie.id;
    card.dataset.id = movie.id;
    card.dataset.status = movie.detail_status || "";
    var a = card.querySelector(".title a");
    if (a) {
      a.textContent = movie.title == null ? "?" : movie.title;
      if (typeof movie.url === "string" && movie.url.indexOf("https://") === 0) a.href = movie.url;
    }
    setText(card, "date", movie.release_date_iso || movie.release_date);
    setText(card, "genres", joined(movie.genres));
    setText(card, "regions", joined(movie.regions));
    setText(card, "directors", joined(movie.directors));
    setText(card, "wish", typeof movie.wish_count === "number" ? movie.wish_count : "");
    setText(card, "rating", typeof movie.rating === "number" ? movie.rating.toFixed(1) : "");
  }

  function setStatus(doc, done) {
    var el = document.getElementById("status");
    if (!el) return;
    var text = doc.count + " movies coming soon";
    if (!done) text += "; details of " + doc.pending + " on their way";
    el.textContent = text;
  }

  function follow(city, cards) {
    var doc = null;
    var source = new EventSource("/movies/events?city=" + encodeURIComponent(city));
    source.addEventListener("answer", function (e) {
      doc = JSON.parse(e.data);
      var have = {};
      Array.prototype.forEach.call(cards.children, function (c) { have[c.dataset.id] = c; });
      var list = document.createDocumentFragment();
      doc.movies.forEach(function (m) {
        var card = have[m.id] || makeCard(m);
        fill(card, m);
        list.appendChild(card);
      });
      cards.textContent = "";
      cards.appendChild(list);
      setStatus(doc, false);
    });
    source.addEventListener("movie", function (e) {
      var m = JSON.parse(e.data);
      var card = document.getElementById("m-" + m.id);
      if (card) fill(card, m);
      if (doc) {
        doc.pending = cards.querySelectorAll('[data-status="pending"]').length;
        setStatus(doc, false);
      }
    });
    source.addEventListener("complete", function (e) {
      source.close();
      var end = JSON.parse(e.data);
      document.body.dataset.complete = "true";
      if (doc) {
        doc.count = end.count;
        setStatus(doc, true);
      }
    });
    source.addEventListener("failed", function () {
      source.close();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("city");
    if (select) {
      select.addEventListener("change", function () {
        if (select.value) select.form.submit();
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("img.poster"), watchPoster);
    var body = document.body;
    var cards = document.getElementById("cards");
    if (body.dataset.city && body.dataset.complete === "false" && cards && window.EventSource)
      follow(body.dataset.city, cards);
  });
})();
