#!/usr/bin/env python3
"""A Douban-shaped fake upstream for moviesd's integration tests and benchmarks.

Serves, on 127.0.0.1 only, pages shaped like Douban's:
  /cinema/later/<city>/   the coming-soon listing; sets the cookie bid=abc123
  /cinema/later/          302 to a city, like Douban
  /cinema/nowplaying/<city>/   the now-playing page: #nowplaying's items with their data-*
                          attributes, then an #upcoming block of the city's first coming-soon
                          movies (never part of a now-playing answer); the same cookie
  /cinema/nowplaying/     302 to a city
  /subject/<id>/          a movie page shaped like the real ones, any numeric id
  /view/photo/<size>/public/p<N>.<ext>   a poster, as img<N>.doubanio.com serves it (the
                          movies' poster and thumbnail URLs are https://img<N>.doubanio.com/
                          view/photo/s_ratio_poster/public/p<N>.webp and .jpg): 403 without a
                          Referer on douban.com, as Douban's image hosts answer since 2023-07;
                          else a tiny real image of the extension's format, or set_image's
                          bytes, always sent as Content-Type text/html (a wrong type: the
                          daemon must read the image's magic bytes)
  anything else           404 (Douban's "页面不存在" page)
Content is deterministic: expected_movie(id) is what the daemon should answer for a movie,
expected_listing_only(id) what it should answer when only the listing could be read. Like
Douban's, a listing says which city it shows: <div id="location" data-uid="<slug>" data-id="<id>">.

In-process use:
    fake = FakeDouban()            # cities of CITY_ORDER, 12 movies each; unknown city -> 404
                                   # (any_city=True: every slug exists; distinct_ids=True:
                                   # those beyond CITY_ORDER list movies of their own)
    fake.start(); fake.port; fake.base_url   # "http://127.0.0.1:PORT"
    fake.set_city("beijing", 40)   # a count or a list of ids; offhost=True adds off-host links
                                   # (offhost=[(id, href), ...]: those links instead)
    fake.remove_city("beijing"); fake.city_ids("beijing")
    fake.set_title(36000001, "a,b;c")   # a movie's title on every page (None: its own)
    fake.set_nowplaying("beijing", 8)   # its now-playing movies: a count (ids from
                                   # nowplaying_ids) or a list of ids; every city listed has
                                   # DEFAULT_NOWPLAYING by default
    fake.nowplaying_ids_of("beijing")
    fake.set_text_quirks("beijing", month_only=True, invisible_marks=True)
                                   # Douban's text: see month_only_dates, invisible_marks
    fake.answer_as("xyz", "shanghai")   # xyz's listing is shanghai's page, as Douban answers a
                                   # city it does not know; answer_as("xyz", None) undoes it
    fake.set_latency(100)          # ms before every response
    fake.set_image(path, data)     # the bytes served for an image path (None: the default)
    fake.set_poster(mid, url)      # movie mid's poster and thumbnail URL in its pages
    f = fake.add_fault(r"^/subject/36000003/$", 500, times=1)   # regex on the path
    fake.remove_fault(f); fake.clear_faults()
    fake.total, fake.count(path), fake.counts(), fake.count_matching(regex)
    fake.in_flight, fake.peak_in_flight, fake.timeline(), fake.snapshot(),
    fake.headers_seen(regex), fake.reset_stats()
    fake.set_block_after(35)       # Douban's limiter: see "The limiter" below
    fake.limiter_trips(), fake.blocked_now()
    fake.stop()                    # also wakes "hang" and delayed handlers

Fault kinds (add_fault(pattern, kind, times=None, **params)):
    <int status>     e.g. 404, 500, 503 (retry_after=N), 403, 418, 429; body=...
    "redirect"       302 to https://sec.douban.com/... (location=, code=)
    "block_page"     200 "有异常请求从你的 IP 发出"     "login_page"   200 "登录跳转页"
    "notfound_page"  200 <title>页面不存在</title>
    "no_anchor"      200 without #showing-soon (listing; now playing: without #nowplaying) /
                     without #mainpic and v:itemreviewed
    "empty_listing"  200 with an empty #showing-soon (now playing: an empty #nowplaying)
    "hang"           never answers until stop()     "delay"  ms=N extra before answering
    "truncated"      Content-Length larger than what is sent, then close (fraction=0.5)
    "garbage"        200 of random bytes (invalid UTF-8, NULs)
    "chunked_big"    chunked body of size=N bytes (default 8 MiB), no Content-Length
    "gzip_bomb"      Content-Encoding: gzip decoding to size=N zero bytes (default 64 MiB);
                     sent whatever Accept-Encoding says unless require_accept=True
    "deep_nesting"   the normal page wrapped in depth=N nested <div> (default 100000)

The limiter (off unless set): Douban blocks an IP for the whole domain for hours once it
sends too many requests in a minute. set_block_after(n, block_seconds=3600) models that: once
more than n requests (any path, any answer, also those answered during a block) have started
within 60 s, the request that made it n + 1 and every request for block_seconds after it are
answered 302 to https://sec.douban.com/...; limiter_trips() lists when (monotonic) and on which
path it tripped. A block that has ended trips again on the next request while the last 60 s
still hold more than n starts.

Script use (benchmarks, manual runs):
    python3 tests/fake_upstream.py --port 0 --movies 40 [--any-city [--distinct-ids]] [--latency-ms 0]
                                   [--block-after N [--block-seconds S]]
prints "listening on 127.0.0.1:PORT" and serves until SIGTERM/SIGINT.

Python 3.11 standard library only.
"""

import argparse
import base64
import collections
import datetime as _dt
import html as _html
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# ----------------------------------------------------------------------------------------
# Deterministic content
# ----------------------------------------------------------------------------------------

CITY_ORDER = ["beijing", "shanghai", "guangzhou", "shenzhen", "chengdu", "hangzhou", "wuhan",
              "xian", "nanjing", "chongqing", "tianjin", "suzhou"]
# Douban's ids of the cities above (the ids of others are made up from their slugs).
CITY_DOUBAN_IDS = {"beijing": "108288", "shanghai": "108296", "guangzhou": "118281",
                   "shenzhen": "118282", "chengdu": "118318", "hangzhou": "118172",
                   "wuhan": "118254", "xian": "118371", "nanjing": "118159",
                   "chongqing": "108309", "tianjin": "108289", "suzhou": "118163"}
ID_BASE = 36000000
# Now-playing movies: ids of their own (NOWPLAYING_BASE + CITY_STEP * k + i), so a movie is in
# both of a city's listings only where a test puts it there.
NOWPLAYING_BASE = 37000000
DEFAULT_NOWPLAYING = 8
UPCOMING_SHOWN = 5       # the coming-soon movies in a now-playing page's #upcoming block
CITY_STEP = 4            # city k lists ID_BASE + 4k + i: neighbouring cities share most movies
DEFAULT_MOVIES = 12
DEFAULT_COOKIE = "bid=abc123"

# Off-host links added to a city's listing with set_city(..., offhost=True). None of these ids
# may ever be requested from the fake, nor appear in an answer.
OFFHOST_LINKS = [
    (99900001, "https://evil.example/subject/99900001/"),
    (99900002, "http://other.douban.com/subject/99900002/"),
    (99900003, "https://movie.douban.com.evil.example/subject/99900003/"),
    (99900004, "https://evil.example/movie.douban.com/subject/99900004/"),
]
OFFHOST_IDS = [i for i, _ in OFFHOST_LINKS]
# Subject links outside #showing-soon (sidebar); never part of an answer.
SIDEBAR_IDS = [1292052, 1291546]

_TITLES = ["去你的岛", "长夜将明", "风起青萍", "海上灯塔", "山那边的信", "午夜列车", "星河彼岸",
           "雪落无声", "追光者", "沉默的证人", "南方的夏天", "第七封信"]
_ORIGINALS = ["Island of You", "Night Train", "The Lighthouse Keeper", "Letters from the Hill",
              "Beyond the Stars", "Silent Witness", "Southern Summer", "The Seventh Letter"]
_GENRES = ["剧情", "喜剧", "动作", "爱情", "科幻", "动画", "悬疑", "惊悚", "恐怖", "奇幻", "冒险",
           "家庭", "历史", "战争", "犯罪"]
_DIRECTORS = ["张艺谋", "克里斯托弗·诺兰", "是枝裕和", "贾樟柯", "丹尼斯·维伦纽瓦", "王家卫", "宫崎骏"]
_ACTORS = ["莱昂纳多·迪卡普里奥", "周迅", "易烊千玺", "汤姆·哈迪", "章子怡", "黄渤", "斯嘉丽·约翰逊",
           "役所广司", "张译", "蒂尔达·斯文顿", "王一博", "刘德华"]


def today_cn():
    """Douban's day (UTC+8)."""
    return (_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(hours=8)).date()


def city_ids(city, n):
    """The ids a city lists by default: overlapping across cities."""
    if city in CITY_ORDER:
        k = CITY_ORDER.index(city)
    else:
        k = zlib.crc32(city.encode()) % 100 + len(CITY_ORDER)
    return [ID_BASE + CITY_STEP * k + i for i in range(n)]


def nowplaying_ids(city, n):
    """The ids a city shows as now playing by default: overlapping across cities, like
    city_ids, and never among any city's coming-soon ids."""
    if city in CITY_ORDER:
        k = CITY_ORDER.index(city)
    else:
        k = zlib.crc32(city.encode()) % 100 + len(CITY_ORDER)
    return [NOWPLAYING_BASE + CITY_STEP * k + i for i in range(n)]


# Made-up cities' ids with distinct_ids: far from the cities of CITY_ORDER.
DISTINCT_BASE = 40000000
DISTINCT_STEP = 100      # the most movies such a city lists


def distinct_city_ids(city, n):
    """The ids a city served by any_city lists with distinct_ids: its own, from its slug, so a
    flood of cities fills the record cache (among 5,000 slugs, a dozen pairs share them)."""
    k = zlib.crc32(city.encode()) % 1000000
    return [DISTINCT_BASE + DISTINCT_STEP * k + i for i in range(min(n, DISTINCT_STEP))]


def city_douban_id(city):
    """The data-id of a city's #location: Douban's for the cities it knows here, the slug
    itself for a slug of digits (Douban's slug for a city without a pinyin one), else one
    made up from the slug."""
    if city in CITY_DOUBAN_IDS:
        return CITY_DOUBAN_IDS[city]
    if city.isdigit():
        return city
    return str(200000 + zlib.crc32(city.encode()) % 100000)


# Titles set by FakeDouban.set_title: movie id -> title, for every fake of the process.
TITLE_OVERRIDES = {}


def movie_spec(mid, today=None):
    """Everything the fake knows of movie mid (raw: titles as text, not HTML)."""
    mid = int(mid)
    today = today or today_cn()
    foreign = mid % 3 == 1
    title = "%s%d" % (_TITLES[mid % len(_TITLES)], mid % 1000)
    if mid in TITLE_OVERRIDES:
        title = TITLE_OVERRIDES[mid]
    elif mid % 9 == 4:
        title = "速度&激情%d" % (mid % 1000)          # rendered as &amp;
    elif mid % 9 == 5:
        title = "他/她的%d" % (mid % 1000)             # rendered as &#47;
    original = ("%s %d" % (_ORIGINALS[mid % len(_ORIGINALS)], mid % 1000)) if foreign else title
    release = today + _dt.timedelta(days=1 + mid % 45)
    g = [_GENRES[mid % len(_GENRES)]]
    for extra in (mid // 7, mid // 11):
        if mid % 2 == 0 or extra % 3 == 0:
            cand = _GENRES[extra % len(_GENRES)]
            if cand not in g:
                g.append(cand)
    if foreign:
        regions = [["美国"], ["美国", "英国"], ["日本"]][(mid // 3) % 3]
        languages = {"日本": ["日语"]}.get(regions[0], ["英语", "法语"] if mid % 2 else ["英语"])
    else:
        regions = ["中国大陆"] if mid % 4 else ["中国大陆", "中国香港"]
        languages = ["汉语普通话"] if mid % 4 else ["汉语普通话", "粤语"]
    directors = [_DIRECTORS[mid % len(_DIRECTORS)]]
    if mid % 5 == 0:
        directors.append(_DIRECTORS[(mid + 3) % len(_DIRECTORS)])
    n_actors = mid % 6                      # 0..5 actors
    actors = []
    for j in range(n_actors):
        a = _ACTORS[(mid + 5 * j) % len(_ACTORS)]
        if a not in actors:
            actors.append(a)
    runtime = None if mid % 13 == 0 else 85 + mid % 60
    rated = mid % 4 == 0
    rating = round(6.0 + (mid % 40) / 10.0, 1) if rated else None
    votes = 1000 + mid % 9000 if rated else None
    if foreign or mid % 2 == 0:
        imdb = "tt%07d" % ((mid * 7) % 10000000)
    else:
        imdb = None
    wish = (mid * 7919) % 20000 + 50
    pid = 2900000000 + mid % 100000000
    img = "img%d" % (mid % 10)
    para1 = "%s讲述了第%d号测试影片的故事，主人公在一个夏天踏上旅程。" % (title, mid)
    para2 = "他说：\"明天见。\"——这是一个关于告别与重逢的故事。"
    short_only = mid % 8 == 3
    return {
        "id": str(mid),
        "foreign": foreign,
        "title": title,
        "original_title": original,
        "itemreviewed": title if not foreign else "%s %s" % (title, original),
        "release": release,
        "other_release": (release - _dt.timedelta(days=20)) if foreign else None,
        "genres": g,
        "regions": regions,
        "listing_has_regions": mid % 10 != 7,
        "languages": languages,
        "directors": directors,
        "actors": actors,
        "runtime": runtime,
        "rating": rating,
        "votes": votes,
        "imdb": imdb,
        "wish": wish,
        "wish_text": ("{:,}人想看" if mid % 2 == 0 else "{}人想看").format(wish),
        "thumbnail": "https://%s.doubanio.com/view/photo/s_ratio_poster/public/p%d.jpg" % (img, pid),
        "poster": "https://%s.doubanio.com/view/photo/s_ratio_poster/public/p%d.webp" % (img, pid),
        "paragraphs": [para1] if short_only else [para1, para2],
        "short_only": short_only,
    }


MOVIE_KEYS = ["id", "url", "title", "original_title", "release_date", "release_date_iso",
              "release_date_precision", "genres",
              "regions", "wish_count", "thumbnail", "poster", "poster_proxy", "year", "directors",
              "actors",
              "runtime_minutes", "rating", "votes", "imdb_id", "languages", "summary",
              "detail_status", "detail_error"]


def expected_movie(mid, today=None):
    """The movie object the daemon should answer for movie mid when its page was fetched."""
    s = movie_spec(mid, today)
    return {
        "id": s["id"],
        "url": "https://movie.douban.com/subject/%s/" % s["id"],
        "title": s["title"],
        "original_title": s["original_title"],
        "release_date": s["release"].strftime("%m月%d日"),
        "release_date_iso": s["release"].isoformat(),
        "release_date_precision": "day",
        "genres": list(s["genres"]),
        "regions": list(s["regions"]),
        "wish_count": s["wish"],
        "thumbnail": s["thumbnail"],
        "poster": s["poster"],
        "poster_proxy": "/posters/%s" % s["id"],
        "year": s["release"].year,
        "directors": list(s["directors"]),
        "actors": list(s["actors"]),
        "runtime_minutes": s["runtime"],
        "rating": s["rating"],
        "votes": s["votes"],
        "imdb_id": s["imdb"],
        "languages": list(s["languages"]),
        "summary": "\n".join(s["paragraphs"]),
        "detail_status": "ok",
        "detail_error": None,
    }


def expected_listing_only(mid, today=None, status="failed"):
    """The movie object when only the listing could be read: its page failed (detail_error
    set by the daemon: here None, the caller checks it) or is still awaited (status
    "pending"). Fields the listing does not carry are null or []."""
    s = movie_spec(mid, today)
    e = expected_movie(mid, today)
    out = {k: None for k in MOVIE_KEYS}
    for k in ("directors", "actors", "languages"):
        out[k] = []
    for k in ("id", "url", "title", "release_date", "release_date_iso", "release_date_precision",
              "genres", "wish_count", "thumbnail", "poster_proxy"):
        out[k] = e[k]
    out["regions"] = list(s["regions"]) if s["listing_has_regions"] else []
    out["detail_status"] = status
    return out


def nowplaying_attrs(mid, today=None):
    """What the now-playing page's data-* attributes say of movie mid (raw text). Votes are
    counted later than the movie page's (a few more), as a listing read after the page is."""
    s = movie_spec(mid, today)
    mid = int(mid)
    runtime = s["runtime"]
    if runtime is None:
        duration = ""
    elif mid % 3 == 0:
        duration = "%d分钟(中国大陆)" % runtime   # the version's, like Douban's
    elif mid % 3 == 1:
        duration = "%d 分钟" % runtime
    else:
        duration = "%d分钟" % runtime
    return {
        "title": s["title"],
        "score": "%.1f" % s["rating"] if s["rating"] is not None else "0",
        "release": str(s["release"].year),
        "duration": duration,
        "region": " ".join(s["regions"]),
        "director": " ".join(s["directors"]),
        "actors": " / ".join(s["actors"][:3]),
        "votecount": str(s["votes"] + 17 if s["votes"] is not None else 100 + mid % 500),
        "poster": s["thumbnail"],
    }


def expected_nowplaying(mid, today=None):
    """The movie object the daemon should answer for now-playing movie mid once its page was
    fetched: the page's fields, with the listing's rating and (fresher) votes."""
    s = movie_spec(mid, today)
    a = nowplaying_attrs(mid, today)
    out = expected_movie(mid, today)
    out["release_date"] = None
    out["wish_count"] = None
    out["votes"] = int(a["votecount"])
    out["year"] = s["release"].year
    return out


def expected_nowplaying_only(mid, today=None, status="pending"):
    """The now-playing movie object from the listing alone (its page awaited, or failed:
    status "failed", detail_error set by the daemon, here None)."""
    s = movie_spec(mid, today)
    a = nowplaying_attrs(mid, today)
    out = {k: None for k in MOVIE_KEYS}
    out.update({
        "id": s["id"],
        "url": "https://movie.douban.com/subject/%s/" % s["id"],
        "title": s["title"],
        "genres": [],
        "regions": list(s["regions"]),
        "thumbnail": a["poster"],
        "poster": a["poster"],
        "poster_proxy": "/posters/%s" % s["id"],
        "year": s["release"].year,
        "directors": list(s["directors"]),
        "actors": list(s["actors"][:3]),
        "runtime_minutes": s["runtime"],
        "rating": s["rating"],
        "votes": int(a["votecount"]),
        "languages": [],
        "detail_status": status,
    })
    return out


def esc(text):
    """Escapes like Douban does: &amp; for &, &#47; for / inside titles, &quot; for quotes."""
    return _html.escape(text, quote=True).replace("&#x27;", "&#39;").replace("/", "&#47;")


def esc_text(text):
    return _html.escape(text, quote=True).replace("&#x27;", "&#39;")


# ----------------------------------------------------------------------------------------
# Pages
# ----------------------------------------------------------------------------------------

_HEAD = """<!DOCTYPE html>
<html lang="zh-CN" class="ua-linux ua-webkit">
<head>
    <meta http-equiv="Content-Type" content="text/html; charset=utf-8">
    <meta name="renderer" content="webkit">
    <meta name="referrer" content="always">
    <title>
        %s
</title>
    <link href="https://img9.doubanio.com/f/shire/204847ecc7d679de915c283531d14f16cfbee65e/css/douban.css" rel="stylesheet" type="text/css">
    <script type="text/javascript" src="https://img9.doubanio.com/f/movie/0495cb173e298c28593766009c7b0a953246c5b5/js/movie/lib/jquery.js"></script>
%s
</head>
<body>
<div id="db-global-nav" class="global-nav">
  <div class="bd">
    <div class="top-nav-info"><a href="https://accounts.douban.com/passport/login" class="nav-login" rel="nofollow">登录/注册</a></div>
  </div>
</div>
<div id="db-nav-movie" class="nav">
  <div class="nav-wrap">
  <div class="nav-primary">
    <div class="nav-logo"><a href="https://movie.douban.com"><img src="https://img9.doubanio.com/f/movie/logo.png" alt="豆瓣电影" /></a></div>
  </div>
  </div>
</div>
<script id="suggResult" type="text/x-jquery-tmpl">
  <li data-link="{{= url}}">
            <a href="{{= url}}" onclick="moreurl(this, {from:'movie_search_sugg', query:'{{= keyword }}', subject_id:'{{= id}}', i: '{{= index}}', type: '{{= type}}'})">
            <img src="{{= img}}" width="40" />
            <p>
                <em>{{= title}}</em>
            </p>
        </a>
        </li>
  </script>
"""

_FOOT = """
<div id="footer">
<span id="icp" class="fleft gray-link">&copy; 2005－2026 douban.com, all rights reserved 北京豆网科技有限公司</span>
</div>
</body>
</html>
"""


def listing_item_html(mid, odd, href=None, today=None):
    s = movie_spec(mid, today)
    href = href or "https://movie.douban.com/subject/%s/" % s["id"]
    rows = ['                <li class="dt">%s</li>' % s["release"].strftime("%m月%d日"),
            '                <li class="dt">%s</li>' % " / ".join(s["genres"])]
    if s["listing_has_regions"]:
        rows.append('                <li class="dt">%s</li>' % " / ".join(s["regions"]))
    rows.append('                <li class="dt last"><span class="">%s</span></li>' % s["wish_text"])
    trailer = ""
    if mid % 2 == 0:
        trailer = ('                <a href="https://movie.douban.com/trailer/%d/#content" '
                   'class="trailer_icon">预告片</a>\n' % (200000 + mid % 100000))
    return """    <div class="item mod %s">
        <a class="thumb" href="%s">
            <img src="%s" class="" />
        </a>
        <div class="intro">
            <h3>
                <a href="%s" class="">
                    %s
                </a>
                <span class="icon"></span>
            </h3>
            <ul>
%s
%s            </ul>
        </div>
    </div>
""" % ("odd" if odd else "", href, s["thumbnail"], href, esc(s["title"]), "\n".join(rows),
       trailer)


def listing_html(city, ids, offhost=False, today=None, showing_soon=True, empty=False):
    items = []
    entries = [(mid, None) for mid in ids]
    if offhost:
        # Off-host entries interleaved: second, fourth, ... and the end. offhost may also be
        # a list of (id, href) pairs, used instead of OFFHOST_LINKS (hrefs are sent as given).
        links = list(offhost) if isinstance(offhost, (list, tuple)) else OFFHOST_LINKS
        for j, (oid, href) in enumerate(links):
            entries.insert(min(len(entries), 1 + 2 * j), (oid, href))
    for n, (mid, href) in enumerate(entries):
        items.append(listing_item_html(mid, n % 2 == 1, href, today))
    sidebar = "".join(
        '<li><a href="https://movie.douban.com/subject/%d/">热门影片%d</a></li>\n' % (i, i)
        for i in SIDEBAR_IDS)
    if showing_soon:
        body = ('<div id="showing-soon" class="tab-bd">\n%s</div>\n'
                % ("" if empty else "".join(items)))
    else:
        # The layout changed: the same items under another id.
        body = '<div id="coming-soon-v2" class="tab-bd">\n%s</div>\n' % "".join(items)
    return (_HEAD % ("即将上映的电影 (豆瓣)", "") + """
<div id="wrapper">
<div id="content">
    <h1>即将上映的电影 - %s</h1>
    <div id="location" data-uid="%s" data-id="%s">
        <a class="change-loc" href="javascript:void(0);">[切换城市]</a>
    </div>
    <div class="grid-16-8 clearfix">
        <div class="article">
        <div class="tabs">
            <a href="https://movie.douban.com/cinema/nowplaying/%s/">正在上映</a>
            <a href="https://movie.douban.com/cinema/later/%s/" class="on">即将上映</a>
        </div>
%s
        </div>
        <div class="aside">
            <h2>热门电影</h2>
            <ul class="hot">
%s            </ul>
        </div>
    </div>
</div>
</div>
""" % (city, city, city_douban_id(city), city, city, body, sidebar) + _FOOT)


def nowplaying_item_html(mid, today=None):
    """One li.list-item of #nowplaying, shaped like the real page's (tabs, the unquoted
    class=ticket-btn)."""
    a = nowplaying_attrs(mid, today)
    sid = str(int(mid))
    t = "\t" * 8
    return (t + '<li id="%s" class="list-item" data-title="%s" data-score="%s" data-star="40"\n'
            + t + '\tdata-release="%s" data-duration="%s" data-region="%s" data-director="%s"\n'
            + t + '\tdata-actors="%s" data-category="nowplaying" data-enough="True"\n'
            + t + '\tdata-showed="True" data-votecount="%s" data-subject="%s">\n'
            + t + '\t<ul class="">\n'
            + t + '\t\t<li class="poster">\n'
            + t + '\t\t\t<a href="https://movie.douban.com/subject/%s/?from=playing_poster"\n'
            + t + '\t\t\t\tclass=ticket-btn target="_blank" data-psource="poster">\n'
            + t + '\t\t\t\t<img src="%s" alt="%s" rel="nofollow" class="" />\n'
            + '                                </a>\n'
            + t + '\t\t</li>\n'
            + t + '\t\t<li class="stitle">\n'
            + t + '\t\t\t<a href="https://movie.douban.com/subject/%s/?from=playing_poster"\n'
            + t + '\t\t\t\tclass="ticket-btn" target="_blank" title="%s" data-psource="title">\n'
            + t + '\t\t\t\t%s\n'
            + t + '\t\t\t</a>\n'
            + t + '\t\t</li>\n'
            + t + '\t\t<li class="srating"><span class="subject-rate">%s</span></li>\n'
            + t + '\t\t<li class="sbtn"><a class="ticket-btn" href="https://movie.douban.com/ticket/redirect/?movie_id=%s" target="_blank">选座购票</a></li>\n'
            + t + '\t</ul>\n'
            + t + '</li>\n') % (
        sid, esc(a["title"]), a["score"], a["release"], a["duration"], esc_text(a["region"]),
        esc_text(a["director"]), esc_text(a["actors"]), a["votecount"], sid, sid, a["poster"],
        esc(a["title"]), sid, esc(a["title"]), esc(a["title"]),
        a["score"] if a["score"] != "0" else "暂无评分", sid)


def upcoming_item_html(mid, today=None):
    """One li.list-item of the now-playing page's #upcoming block: a coming-soon movie."""
    s = movie_spec(mid, today)
    t = "\t" * 8
    return (t + '<li id="%s" class="list-item" data-title="%s" data-wish="%d" data-duration="%s"\n'
            + t + '\tdata-region="%s" data-director="%s" data-actors="%s" data-category="upcoming"'
            ' data-subject="%s">\n'
            + t + '\t<ul class="">\n'
            + t + '\t\t<li class="poster"><a href="https://movie.douban.com/subject/%s/?from=playing_poster"'
            ' class=ticket-btn target="_blank"><img src="%s" alt="%s" rel="nofollow" class="" /></a></li>\n'
            + t + '\t\t<li class="stitle"><a href="https://movie.douban.com/subject/%s/" class="ticket-btn"'
            ' title="%s">%s</a></li>\n'
            + t + '\t\t<li class="release-date">%s上映</li>\n'
            + t + '\t</ul>\n'
            + t + '</li>\n') % (
        s["id"], esc(s["title"]), s["wish"], "%d分钟" % (s["runtime"] or 90),
        esc_text(" ".join(s["regions"])), esc_text(" ".join(s["directors"])),
        esc_text(" / ".join(s["actors"][:3])), s["id"], s["id"], s["thumbnail"], esc(s["title"]),
        s["id"], esc(s["title"]), esc(s["title"]), s["release"].strftime("%m月%d日"))


def nowplaying_html(city, ids, upcoming=(), today=None, anchor=True, empty=False):
    """The now-playing page of city: ids in #nowplaying, upcoming in #upcoming. anchor=False:
    a changed layout, the same items under another id; empty: no item in #nowplaying."""
    playing = "" if empty else "".join(nowplaying_item_html(m, today) for m in ids)
    coming = "".join(upcoming_item_html(m, today) for m in upcoming)
    return (_HEAD % ("%s - 在线购票&amp;影讯" % city, "") + """
<div id="wrapper">
	<div id="content">
		<h1>%s - 在线购票&amp;影讯</h1>
		<div class="grid-16-8 clearfix">
			<div class="article">
				<div id="hd">
					<div id="location" data-uid="%s" data-id="%s">
						<a class="change-loc" href="javascript:void(0);">[切换城市]</a>
					</div>
				</div>
				<div id="%s">
					<div class="mod-hd"><h2>正在上映</h2></div>
					<div class="mod-bd">
						<ul class="lists">
%s						</ul>
					</div>
				</div>
				<div id="upcoming">
					<div class="mod-hd"><h2>即将上映</h2></div>
					<div class="mod-bd">
						<ul class="lists">
%s						</ul>
					</div>
				</div>
			</div>
		</div>
	</div>
</div>
""" % (city, city, city_douban_id(city), "nowplaying" if anchor else "playing-v2", playing,
       coming) + _FOOT)


def detail_html(mid, today=None, with_mainpic=True):
    """with_mainpic=False: a redesigned page, neither #mainpic nor v:itemreviewed (the anchors)
    but the rest (#info, rating, summary) still there."""
    s = movie_spec(mid, today)
    sid = s["id"]
    ld = ('<script type="application/ld+json">\n{\n  "@context": "http://schema.org",\n'
          '  "name": "%s",\n  "url": "/subject/%s/",\n  "image": "%s",\n'
          '  "datePublished": "%s",\n  "description": "%s\n%s",\n  "@type": "Movie"\n}\n'
          '</script>\n') % (esc_text(s["itemreviewed"]), sid, s["poster"], s["release"].isoformat(),
                            esc_text(s["paragraphs"][0][:20]), "raw newline above")
    meta = ('    <meta property="og:title" content="%s" />\n'
            '    <meta property="og:image" content="%s" />\n' % (esc_text(s["title"]), s["poster"]))
    info = []
    info.append('        <span ><span class=\'pl\'>导演</span>: <span class=\'attrs\'>%s</span></span><br/>'
                % " / ".join('<a href="/celebrity/%d/" rel="v:directedBy">%s</a>'
                             % (1054000 + k, esc_text(d)) for k, d in enumerate(s["directors"])))
    if s["actors"]:
        links = []
        for k, a in enumerate(s["actors"]):
            if k == 1:   # linked to a search, with stray spaces, like real pages
                links.append('<a href="/subject_search?search_text=%s" rel="v:starring"> %s </a>'
                             % (esc_text(a), esc_text(a)))
            else:
                links.append('<a href="/celebrity/%d/" rel="v:starring">%s</a>'
                             % (1041000 + k, esc_text(a)))
        info.append('        <span class="actor"><span class=\'pl\'>主演</span>: '
                    '<span class=\'attrs\'>%s</span></span><br/>' % " / ".join(links))
    info.append('        <span class="pl">类型:</span> %s<br/>'
                % " / ".join('<span property="v:genre">%s</span>' % g for g in s["genres"]))
    info.append('        <span class="pl">制片国家/地区:</span> %s<br/>' % " / ".join(s["regions"]))
    info.append('        <span class="pl">语言:</span> %s<br/>' % " / ".join(s["languages"]))
    dates = ['<span property="v:initialReleaseDate" content="%s(中国大陆)">%s(中国大陆)</span>'
             % (s["release"].isoformat(), s["release"].isoformat())]
    if s["other_release"]:
        region = s["regions"][0]
        dates.append('<span property="v:initialReleaseDate" content="%s(%s)">%s(%s)</span>'
                     % (s["other_release"].isoformat(), region, s["other_release"].isoformat(),
                        region))
    info.append('        <span class="pl">上映日期:</span> %s<br/>' % " / ".join(dates))
    if s["runtime"] is not None:
        info.append('        <span class="pl">片长:</span> <span property="v:runtime" content="%d">'
                    '%d分钟</span><br/>' % (s["runtime"], s["runtime"]))
    info.append('        <span class="pl">又名:</span> %s 又名 / Alias %s<br/>' % (esc_text(s["title"]), sid))
    if s["imdb"]:
        info.append('        <span class="pl">IMDb:</span> %s<br>' % s["imdb"])
    if s["rating"] is not None:
        rating = ('    <strong class="ll rating_num" property="v:average">%.1f</strong>\n'
                  '    <span property="v:best" content="10.0"></span>\n'
                  '    <div class="rating_right ">\n        <div class="rating_sum">\n'
                  '                <a href="comments" class="rating_people">\n'
                  '                    <span property="v:votes">%d</span>人评价\n'
                  '                </a>\n        </div>\n    </div>\n' % (s["rating"], s["votes"]))
    else:
        rating = ('    <strong class="ll rating_num" property="v:average"></strong>\n'
                  '    <span property="v:best" content="10.0"></span>\n'
                  '    <div class="rating_right not_showed">\n        <div class="rating_sum">\n'
                  '                    尚未上映\n        </div>\n    </div>\n')
    ps = ["　　" + esc_text(p) for p in s["paragraphs"]]
    teaser = "　　" + esc_text(s["paragraphs"][0][:10])
    if s["short_only"]:
        summary = ('                        <span property="v:summary" class="">\n'
                   '                                %s\n'
                   '                        </span>\n' % ps[0])
    else:
        summary = ('                        <span class="short">\n'
                   '                            <span property="v:summary">\n'
                   '                                    %s...\n'
                   '                            </span>\n'
                   '                            <a href="javascript:void(0)" class="j a_show_full">(展开全部)</a>\n'
                   '                        </span>\n'
                   '                        <span class="all hidden">\n'
                   '                                %s\n'
                   '                        </span>\n' % (teaser, "<br />\n                                ".join(ps)))
    mainpic = ""
    if with_mainpic:
        mainpic = """<div id="mainpic" class="">
    <a class="nbgnbg" href="https://movie.douban.com/subject/%s/photos?type=R" title="点击看更多海报">
        <img src="%s" title="点击看更多海报" alt="%s" rel="v:image" />
   </a>
</div>
""" % (sid, s["poster"], esc_text(s["original_title"]))
    return (_HEAD % ("%s (豆瓣)" % esc_text(s["title"]), ld + meta) + """
    <div id="wrapper">
    <div id="content">
    <h1>
        <span %s>%s</span>
            <span class="year">(%d)</span>
    </h1>
        <div class="grid-16-8 clearfix">
            <div class="article">
        <div class="indent clearfix">
            <div class="subjectwrap clearfix">
                <div class="subject clearfix">
%s

<div id="info">
%s
</div>
                </div>
<div id="interest_sectl">
    <div class="rating_wrap clearbox" rel="v:rating">
<div class="rating_self clearfix" typeof="v:Rating">
%s</div>
    </div>
</div>
            </div>
        </div>
<div class="related-info" style="margin-bottom:-10px;">
    <a name="intro"></a>
        <h2>
            <i class="">%s的剧情简介</i>
                &middot;&middot;&middot;&middot;&middot;&middot;
        </h2>
            <div class="indent" id="link-report-intra">
%s                        <span class="pl"><a href="https://movie.douban.com/help/movie#t0-qs">&copy;豆瓣</a></span>
            </div>
</div>
<div id="recommendations" class="">
    <h2><i class="">喜欢这部电影的人也喜欢</i></h2>
    <div class="recommendations-bd">
        <dl class=""><dt><a href="https://movie.douban.com/subject/%d/?from=subject-page"><img src="https://img1.doubanio.com/view/photo/s_ratio_poster/public/p1.webp" alt="推荐" class="" /></a></dt></dl>
    </div>
</div>
            </div>
        </div>
    </div>
    </div>
""" % ('property="v:itemreviewed"' if with_mainpic else 'class="title-v2"',
       esc_text(s["itemreviewed"]), s["release"].year, mainpic, "\n".join(info), rating,
       esc_text(s["title"]), summary, SIDEBAR_IDS[0]) + _FOOT)


# ----------------------------------------------------------------------------------------
# Text quirks of Douban's pages (FakeDouban.set_text_quirks)
# ----------------------------------------------------------------------------------------

# U+200E LEFT-TO-RIGHT MARK, U+200F RIGHT-TO-LEFT MARK, U+200B ZERO WIDTH SPACE, U+FEFF BOM:
# invisible, and in Douban's text (a 2026 title ended in U+200E). None may reach an answer.
MARKS = ("\u200e", "\u200f", "\u200b", "\ufeff")


def month_only_dates(page):
    """The page with its release days not announced yet: every listing date "MM月DD日" cut
    to "MM月", every movie-page release date "YYYY-MM-DD(region)" to "YYYY-MM(region)"."""
    page = re.sub(r'(<li class="dt">\d{2}月)\d{2}日(</li>)', r"\1\2", page)
    return re.sub(r"(\d{4}-\d{2})-\d{2}(\([^()<>\"]+\))", r"\1\2", page)


def invisible_marks(page):
    """The page with MARKS before, inside and after every non-blank text of its <body> and
    every non-empty alt, title, src and content attribute there, taking turns. Script content,
    blank text and entities are left whole, so the page parses to the same tree: removing
    MARKS from the result gives the page back."""
    head, sep, body = page.partition("<body>")
    turn = [0]

    def mark(text):
        k = turn[0]
        turn[0] += 1
        core = text.strip()
        lead, trail = text[:text.index(core)], text[text.index(core) + len(core):]
        tokens = re.findall(r"&#?\w+;|.", core, re.S)
        half = len(tokens) // 2
        return (MARKS[k % 4] + lead + "".join(tokens[:half]) + MARKS[(k + 1) % 4]
                + "".join(tokens[half:]) + trail + MARKS[(k + 2) % 4])

    parts = re.split(r"(<script\b.*?</script>)", body, flags=re.S)
    for i in range(0, len(parts), 2):          # the odd parts are scripts
        part = re.sub(r">([^<>]+)<", lambda m: ">%s<" % (mark(m.group(1)) if m.group(1).strip()
                                                          else m.group(1)), parts[i])
        parts[i] = re.sub(r'(?<=\s)(alt|title|src|content)="([^"]+)"',
                          lambda m: '%s="%s"' % (m.group(1), mark(m.group(2))), part)
    return head + sep + "".join(parts)


def expected_month_only(movie):
    """An expected_movie() or expected_listing_only() object as the daemon answers it when the
    pages carry month_only_dates: no mainland day on the movie page, so the listing's month."""
    out = dict(movie)
    out["release_date"] = movie["release_date"][:3]               # "MM月"
    out["release_date_iso"] = movie["release_date_iso"][:7]       # "YYYY-MM"
    out["release_date_precision"] = "month"
    return out


NOT_FOUND_HTML = (_HEAD % ("页面不存在", "") + """
<div id="content"><div class="article"><p>呃... 你想访问的页面不存在</p></div></div>
""" + _FOOT)

BLOCK_HTML = ("""<!DOCTYPE html>
<html lang="zh-cmn-Hans">
<head>
<meta charset="UTF-8">
<title>禁止访问</title>
</head>
<body>
<div id="content">
<h1>禁止访问</h1>
<div id="error-page">
<p class="text">检测到有异常请求从你的 IP 发出，请 <a href="https://www.douban.com/accounts/login?redir=https%3A%2F%2Fmovie.douban.com%2F">登录</a> 使用豆瓣。</p>
</div>
</div>
</body>
</html>
""")

LOGIN_HTML = ("""<!DOCTYPE html>
<html lang="zh-cmn-Hans">
<head><meta charset="UTF-8"><title>登录跳转页</title></head>
<body><script>window.location.href="https://accounts.douban.com/passport/login"</script>
<p>登录跳转页</p></body>
</html>
""")

# Tiny real images (1x1): a lossless WebP and a JFIF JPEG; PNGs are made by png_image().
WEBP_1X1 = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
JPEG_1X1 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////"
    "////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/a"
    "AAgBAQABPxA=")
IMAGE_PATH_RE = re.compile(r"/view/photo/[a-z_]+/public/p(\d+)\.(jpg|jpeg|webp|png)")
DOUBAN_REFERER_RE = re.compile(r"^https?://([a-z0-9-]+\.)*douban\.com(/|$)")


def png_image(width=1, height=1, seed=0):
    """A real PNG of width x height grey pixels whose shade depends on seed."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = b"".join(b"\0" + bytes([seed % 256]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def default_image(path):
    """The image the fake serves for an image path: by its extension's format."""
    m = IMAGE_PATH_RE.fullmatch(path)
    ext = m.group(2)
    if ext == "webp":
        return WEBP_1X1
    if ext == "png":
        return png_image(seed=int(m.group(1)))
    return JPEG_1X1


SEC_URL = "https://sec.douban.com/b?r=https%3A%2F%2Fmovie.douban.com%2Fcinema%2Flater%2F"

_GZIP_BOMBS = {}
_GZIP_LOCK = threading.Lock()


def gzip_bomb(size):
    """gzip bytes decoding to size zero bytes (cached)."""
    with _GZIP_LOCK:
        if size not in _GZIP_BOMBS:
            c = zlib.compressobj(9, zlib.DEFLATED, 31)
            chunk = b"\0" * (1 << 20)
            parts = []
            left = size
            while left > 0:
                n = min(left, len(chunk))
                parts.append(c.compress(chunk[:n]))
                left -= n
            parts.append(c.flush())
            _GZIP_BOMBS[size] = b"".join(parts)
        return _GZIP_BOMBS[size]


def garbage_body(n=20000):
    r = random.Random(42)
    return bytes(r.getrandbits(8) for _ in range(n)) + b"\xff\xfe\x00<div id=\"sh\xc3"


# ----------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------

FAULT_KINDS = {"status", "redirect", "block_page", "login_page", "notfound_page", "no_anchor",
               "empty_listing", "hang", "truncated", "garbage", "chunked_big", "gzip_bomb",
               "deep_nesting", "delay"}


class Fault:
    def __init__(self, pattern, kind, times, params):
        self.pattern = re.compile(pattern)
        self.kind = kind
        self.times = times          # None: until removed
        self.params = params
        self.hits = 0


class Request:
    """One request the fake received. start/end are time.monotonic(); end None while running."""

    def __init__(self, method, path, query, headers, start):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers      # dict, lower-case names
        self.start = start
        self.end = None
        self.status = None
        self.fault = None

    def __repr__(self):
        return "Request(%s %s status=%s fault=%s)" % (self.method, self.path, self.status, self.fault)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client closing its connection early is part of the tests (timeouts, size caps).
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dae"
    sys_version = ""
    timeout = 60

    def setup(self):
        super().setup()
        self.server.fake._register(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._unregister(self.connection)

    def log_message(self, fmt, *args):
        if self.server.fake.verbose:
            sys.stderr.write("fake: %s\n" % (fmt % args))

    def do_GET(self):
        self.server.fake._handle(self, head=False)

    def do_HEAD(self):
        self.server.fake._handle(self, head=True)

    def _not_allowed(self):
        self.server.fake._handle(self, head=False, not_allowed=True)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


class FakeDouban:
    """The fake upstream; thread-safe accounting, run-time switchable faults."""

    def __init__(self, cities=None, default_movies=DEFAULT_MOVIES, any_city=False,
                 cookie=DEFAULT_COOKIE, verbose=False, distinct_ids=False):
        self.lock = threading.Lock()
        self.cities = {}            # city -> {"ids": [...], "offhost": bool}
        self.nowplaying = {}        # city -> its now-playing ids
        self.text_quirks = {}       # city -> {"month_only", "invisible_marks"}
        self.answered_as = {}       # city -> the city whose listing page it gets instead
        for c in (CITY_ORDER if cities is None else cities):
            self.set_city(c, default_movies)
        self.default_movies = default_movies
        self.any_city = any_city
        self.distinct_ids = distinct_ids
        self.cookie = cookie
        self.verbose = verbose
        self.latency_ms = 0
        self.detail_padding = b""   # markup added to every movie page (set_detail_padding)
        self.images = {}            # image path -> bytes (set_image)
        self.posters = {}           # movie id -> its poster URL in pages (set_poster)
        self.faults = []
        self.set_block_after(None)
        self._stop = threading.Event()
        self._conns = set()
        self._server = None
        self._thread = None
        self.reset_stats()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, port=0):
        self._stop.clear()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-douban")
        self._thread.start()
        return self

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        """Stops serving; wakes hanging and delayed handlers and closes their connections."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _register(self, conn):
        with self.lock:
            self._conns.add(conn)

    def _unregister(self, conn):
        with self.lock:
            self._conns.discard(conn)

    # -- configuration -----------------------------------------------------------------
    def set_city(self, city, movies=DEFAULT_MOVIES, offhost=False):
        """movies: a count (ids from city_ids) or a list of ids. offhost: True adds the
        OFFHOST_LINKS items to the listing; a list of (id, href) adds those items instead
        (the href is written into the page unescaped: raw control characters stay)."""
        ids = city_ids(city, movies) if isinstance(movies, int) else [int(m) for m in movies]
        with self.lock:
            self.cities[city] = {"ids": ids, "offhost": offhost}
            self.nowplaying.setdefault(city, nowplaying_ids(city, DEFAULT_NOWPLAYING))
        return ids

    def set_title(self, mid, title):
        """Movie mid is called title (raw text, escaped into the pages) on every page, by
        every fake of this process; None gives it its own title back."""
        with self.lock:
            if title is None:
                TITLE_OVERRIDES.pop(int(mid), None)
            else:
                TITLE_OVERRIDES[int(mid)] = title

    def set_nowplaying(self, city, movies=DEFAULT_NOWPLAYING):
        """The city's now-playing movies: a count (ids from nowplaying_ids) or a list of ids
        (coming-soon ones too: a movie can be in both lists)."""
        ids = nowplaying_ids(city, movies) if isinstance(movies, int) else [int(m) for m in movies]
        with self.lock:
            self.nowplaying[city] = ids
        return ids

    def nowplaying_ids_of(self, city):
        """The ids city's now-playing page lists, or None for a city the fake does not serve."""
        with self.lock:
            if city in self.nowplaying and city in self.cities:
                return list(self.nowplaying[city])
        if self.city_ids(city) is None:
            return None
        return nowplaying_ids(city, DEFAULT_NOWPLAYING)

    def remove_city(self, city):
        with self.lock:
            self.cities.pop(city, None)

    def set_text_quirks(self, city, month_only=False, invisible_marks=False):
        """Makes the city's listing, and the pages of the movies it lists, carry Douban's text
        quirks: month_only_dates, invisible_marks (both False: none). A movie page takes the
        quirks of every city listing it."""
        quirks = {q for q, on in (("month_only", month_only), ("invisible_marks", invisible_marks))
                  if on}
        with self.lock:
            self.text_quirks[city] = quirks

    def _quirked(self, page, city=None, mid=None):
        """page with the text quirks of city, or of the cities listing movie mid."""
        with self.lock:
            quirks = dict(self.text_quirks)
        on = set()
        for c, q in quirks.items():
            if c == city or (mid is not None and mid in (self.city_ids(c) or [])):
                on |= q
        if "month_only" in on:
            page = month_only_dates(page)
        if "invisible_marks" in on:
            page = invisible_marks(page)
        return page

    def answer_as(self, city, other):
        """city's listing becomes other's page (its movies and its #location), whether or not
        city is served: Douban's silent answer for a city it does not know. other None: city
        is answered as itself again."""
        with self.lock:
            if other is None:
                self.answered_as.pop(city, None)
            else:
                self.answered_as[city] = other

    def city_ids(self, city):
        with self.lock:
            if city in self.cities:
                return list(self.cities[city]["ids"])
        if self.any_city and re.fullmatch(r"[a-z]{1,32}|[0-9]{1,32}", city):
            if self.distinct_ids:
                return distinct_city_ids(city, self.default_movies)
            return city_ids(city, self.default_movies)
        return None

    def set_latency(self, ms):
        """Delay before every response, in milliseconds."""
        self.latency_ms = ms

    def set_image(self, path, data):
        """Serves data for the image path (None: the default image again)."""
        with self.lock:
            if data is None:
                self.images.pop(path, None)
            else:
                self.images[path] = data

    def set_poster(self, mid, url):
        """Movie mid's pages give url as its poster and thumbnail (None: the usual URLs)."""
        with self.lock:
            if url is None:
                self.posters.pop(int(mid), None)
            else:
                self.posters[int(mid)] = url

    def _with_posters(self, body):
        """body with the poster URLs set_poster replaced."""
        with self.lock:
            posters = dict(self.posters)
        for mid, url in posters.items():
            s = movie_spec(mid)
            for old in (s["poster"], s["thumbnail"]):
                body = body.replace(old.encode(), _html.escape(url).encode())
        return body

    def _image(self, h, rec, release, path, head):
        """An image of the image host: 403 without a Douban Referer, as img*.doubanio.com."""
        if not DOUBAN_REFERER_RE.match(rec.headers.get("referer", "")):
            self._send(h, rec, release, 403, b"<html><body>403 Forbidden</body></html>", head)
            return
        with self.lock:
            data = self.images.get(path)
        self._send(h, rec, release, 200, data if data is not None else default_image(path), head)

    def set_detail_padding(self, size):
        """Grows every movie page by about size bytes of nested, harmless markup (after the
        page's own content) that costs a parser real work; 0 takes it away."""
        unit = '<div class="related"><ul><li><a href="/tag/x">x</a> <span>y</span></li></ul></div>\n'
        with self.lock:
            self.detail_padding = (unit * (size // len(unit))).encode()

    def set_block_after(self, n, block_seconds=3600.0, window=60.0):
        """Turns the limiter on (n requests allowed in any `window` seconds, then a site-wide
        302 to sec.douban.com for block_seconds) or off (n None); forgets earlier trips.
        window is for the fake's own tests; Douban's is a minute."""
        with self.lock:
            self.block_after = n
            self.block_seconds = block_seconds
            self.block_window = window
            self._limiter_starts = collections.deque()
            self._blocked_until = None
            self._trips = []

    def limiter_trips(self):
        """[(monotonic time, path)] of each request that tripped the limiter."""
        with self.lock:
            return list(self._trips)

    def blocked_now(self):
        """True while the limiter's block lasts."""
        with self.lock:
            return self._blocked_until is not None and time.monotonic() < self._blocked_until

    def _limiter_admits(self, start, path):
        """Counts a request for path started at start; False if it is to be answered with
        the block. Called under self.lock."""
        if self.block_after is None:
            return True
        starts = self._limiter_starts
        starts.append(start)
        while starts and starts[0] <= start - self.block_window:
            starts.popleft()
        if self._blocked_until is not None and start < self._blocked_until:
            return False
        if len(starts) > self.block_after:
            self._blocked_until = start + self.block_seconds
            self._trips.append((start, path))
            return False
        return True

    def add_fault(self, pattern, kind, times=None, **params):
        """Applies kind to requests whose path matches regex pattern (re.search), for the next
        `times` matching requests (None: until cleared). kind is an HTTP status (int) or one of
        FAULT_KINDS. Params: status: retry_after, body; redirect: location, code; chunked_big:
        size; gzip_bomb: size, require_accept; deep_nesting: depth; delay: ms; truncated:
        fraction."""
        params = dict(params)
        if isinstance(kind, int):
            params["code"] = kind
            kind = "status"
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % kind)
        f = Fault(pattern, kind, times, params)
        with self.lock:
            self.faults.append(f)
        return f

    def remove_fault(self, fault):
        with self.lock:
            if fault in self.faults:
                self.faults.remove(fault)

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def _take_fault(self, path):
        with self.lock:
            for f in self.faults:
                if f.pattern.search(path):
                    if f.times is not None:
                        if f.times <= 0:
                            continue
                        f.times -= 1
                    f.hits += 1
                    return f
        return None

    # -- accounting --------------------------------------------------------------------
    def reset_stats(self):
        with self.lock:
            self._counts = {}
            self.total = 0
            self.requests = []
            self.in_flight = 0
            self.peak_in_flight = 0

    def counts(self):
        with self.lock:
            return dict(self._counts)

    def count(self, path):
        with self.lock:
            return self._counts.get(path, 0)

    def count_matching(self, pattern):
        rx = re.compile(pattern)
        with self.lock:
            return sum(n for p, n in self._counts.items() if rx.search(p))

    def snapshot(self):
        """A copy of the request records."""
        with self.lock:
            return list(self.requests)

    def timeline(self):
        """[(path, start, end)] of every request (end None while still running)."""
        with self.lock:
            return [(r.path, r.start, r.end) for r in self.requests]

    def headers_seen(self, pattern=None):
        rx = re.compile(pattern) if pattern else None
        with self.lock:
            return [(r.path, dict(r.headers)) for r in self.requests
                    if rx is None or rx.search(r.path)]

    # -- serving -----------------------------------------------------------------------
    def _handle(self, h, head, not_allowed=False):
        split = urlsplit(h.path)
        path, query = split.path, split.query
        headers = {k.lower(): v for k, v in h.headers.items()}
        rec = Request(h.command, path, query, headers, time.monotonic())
        with self.lock:
            limited = not self._limiter_admits(rec.start, path)
            self._counts[path] = self._counts.get(path, 0) + 1
            self.total += 1
            self.requests.append(rec)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        state = {"released": False}

        def release():
            # In flight ends just before the response's bytes go out: the client cannot have
            # seen the answer (and opened another request) while this one still counts.
            if not state["released"]:
                state["released"] = True
                with self.lock:
                    self.in_flight -= 1
                    rec.end = time.monotonic()

        try:
            # The limiter's block is site-wide: it wins over faults, which it leaves unused.
            fault = None if not_allowed or limited else self._take_fault(path)
            rec.fault = "limiter" if limited else (fault.kind if fault else None)
            delay = self.latency_ms
            if fault is not None and fault.kind == "delay":
                delay += fault.params.get("ms", 1000)
            if delay and self._stop.wait(delay / 1000.0):
                h.close_connection = True
                return
            if fault is not None and fault.kind == "hang":
                self._stop.wait()
                h.close_connection = True
                return
            if limited:
                self._send(h, rec, release, 302, b"<html><body>302 Found</body></html>", head,
                           [("Location", SEC_URL)])
                return
            if not_allowed:
                self._send(h, rec, release, 405, b"", head, extra=[("Allow", "GET, HEAD")])
                return
            self._respond(h, rec, release, path, head, fault)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            h.close_connection = True
        finally:
            release()

    def _page(self, path):
        """(status, body bytes, extra headers) of the normal answer for path."""
        m = re.fullmatch(r"/cinema/(later|nowplaying)/([^/]*)/?", path)
        if m:
            kind, city = m.groups()
            if city == "":
                return 302, b"", [("Location", "/cinema/%s/beijing/" % kind)]
            with self.lock:
                city = self.answered_as.get(city, city)
            ids = self.city_ids(city) if kind == "later" else self.nowplaying_ids_of(city)
            if ids is None:
                return 404, NOT_FOUND_HTML.encode(), []
            if kind == "later":
                with self.lock:
                    offhost = self.cities.get(city, {}).get("offhost", False)
                html = listing_html(city, ids, offhost)
            else:
                html = nowplaying_html(city, ids, (self.city_ids(city) or [])[:UPCOMING_SHOWN])
            extra = [("Set-Cookie", "%s; Path=/" % self.cookie)] if self.cookie else []
            return 200, self._quirked(html, city=city).encode(), extra
        m = re.fullmatch(r"/subject/(\d+)/", path)
        if m:
            mid = int(m.group(1))
            body = self._quirked(detail_html(mid), mid=mid).encode()
            with self.lock:
                padding = self.detail_padding
            if padding:
                at = body.rindex(b"</body>")
                body = body[:at] + padding + body[at:]
            return 200, body, []
        return 404, NOT_FOUND_HTML.encode(), []

    @staticmethod
    def _head_bytes(h, status, headers):
        """The status line and headers, written by us in one piece with the body."""
        reason = h.responses.get(status, ("Status",))[0]
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Server: dae",
                 "Date: %s" % h.date_time_string()]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        if h.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def _send(self, h, rec, release, status, body, head, extra=(), ctype="text/html; charset=utf-8"):
        rec.status = status
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))] + list(extra)
        data = self._head_bytes(h, status, headers) + (b"" if head else body)
        release()
        h.wfile.write(data)
        h.wfile.flush()

    def _respond(self, h, rec, release, path, head, fault):
        kind = fault.kind if fault else None
        p = fault.params if fault else {}
        is_listing = path.startswith("/cinema/later/")
        is_nowplaying = path.startswith("/cinema/nowplaying/")
        if (kind is None or kind == "delay") and IMAGE_PATH_RE.fullmatch(path):
            self._image(h, rec, release, path, head)
        elif kind is None or kind == "delay":
            status, body, extra = self._page(path)
            self._send(h, rec, release, status, self._with_posters(body), head, extra)
        elif kind == "status":
            code = p["code"]
            extra = []
            if p.get("retry_after") is not None:
                extra.append(("Retry-After", str(p["retry_after"])))
            body = p.get("body")
            if body is None:
                body = NOT_FOUND_HTML if code == 404 else (
                    "<html><head><title>%d</title></head><body><center><h1>%d</h1></center>"
                    "<hr><center>dae</center></body></html>\n" % (code, code))
            self._send(h, rec, release, code, body.encode() if isinstance(body, str) else body,
                       head, extra)
        elif kind == "redirect":
            loc = p.get("location", SEC_URL)
            self._send(h, rec, release, p.get("code", 302),
                       b"<html><body>302 Found</body></html>", head, [("Location", loc)])
        elif kind == "block_page":
            self._send(h, rec, release, 200, BLOCK_HTML.encode(), head)
        elif kind == "login_page":
            self._send(h, rec, release, 200, LOGIN_HTML.encode(), head)
        elif kind == "notfound_page":
            self._send(h, rec, release, 200, NOT_FOUND_HTML.encode(), head)
        elif kind == "no_anchor" and is_nowplaying:
            city = path.split("/")[3]
            body = nowplaying_html(city, self.nowplaying_ids_of(city) or nowplaying_ids(city, 3),
                                   anchor=False)
            self._send(h, rec, release, 200, body.encode(), head)
        elif kind == "empty_listing" and is_nowplaying:
            city = path.split("/")[3]
            self._send(h, rec, release, 200, nowplaying_html(city, [], empty=True).encode(), head)
        elif kind == "no_anchor":
            if is_listing:
                city = path.split("/")[3]
                body = listing_html(city, self.city_ids(city) or city_ids(city, 3),
                                    showing_soon=False)
            else:
                m = re.search(r"(\d+)", path)
                body = detail_html(int(m.group(1)) if m else 1, with_mainpic=False)
            self._send(h, rec, release, 200, body.encode(), head)
        elif kind == "empty_listing":
            city = path.split("/")[3] if is_listing else "beijing"
            self._send(h, rec, release, 200, listing_html(city, [], empty=True).encode(), head)
        elif kind == "truncated":
            status, body, extra = self._page(path)
            rec.status = status
            sent = body[: int(len(body) * p.get("fraction", 0.5))]
            h.close_connection = True
            data = self._head_bytes(h, status, [("Content-Type", "text/html; charset=utf-8"),
                                                ("Content-Length", str(len(body) + 1000))]
                                    + list(extra))
            release()
            h.wfile.write(data + (b"" if head else sent))
            h.wfile.flush()
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif kind == "garbage":
            self._send(h, rec, release, 200, garbage_body(), head)
        elif kind == "deep_nesting":
            depth = p.get("depth", 100000)
            status, body, extra = self._page(path)
            text = body.decode()
            i = text.index("<body>") + len("<body>")
            j = text.index("</body>")
            deep = text[:i] + "<div>" * depth + text[i:j] + "</div>" * depth + text[j:]
            self._send(h, rec, release, 200, deep.encode(), head, extra)
        elif kind == "gzip_bomb" and p.get("require_accept") and \
                "gzip" not in rec.headers.get("accept-encoding", ""):
            status, body, extra = self._page(path)
            self._send(h, rec, release, status, body, head, extra)
        elif kind == "gzip_bomb":
            data = gzip_bomb(p.get("size", 64 << 20))
            self._send(h, rec, release, 200, data, head, [("Content-Encoding", "gzip")])
        elif kind == "chunked_big":
            size = p.get("size", 8 << 20)
            rec.status = 200
            data = self._head_bytes(h, 200, [("Content-Type", "text/html; charset=utf-8"),
                                             ("Transfer-Encoding", "chunked")])
            release()
            if head:
                h.wfile.write(data)
                return
            h.wfile.write(data)
            filler = (b"<p>" + b"x" * 1017 + b"</p>\n") * 64          # 65536 bytes
            h.wfile.write(b"%x\r\n%s\r\n" % (len(b"<html><body>\n"), b"<html><body>\n"))
            sent = 0
            while sent < size and not self._stop.is_set():
                h.wfile.write(b"%x\r\n%s\r\n" % (len(filler), filler))
                sent += len(filler)
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        else:  # pragma: no cover
            raise AssertionError(kind)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Douban-shaped fake upstream for moviesd")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--movies", type=int, default=DEFAULT_MOVIES, help="movies per city")
    ap.add_argument("--cities", default=",".join(CITY_ORDER), help="comma-separated slugs")
    ap.add_argument("--any-city", action="store_true",
                    help="answer every slug of 1-32 letters a-z or 1-32 digits")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--block-after", type=int, default=None,
                    help="the limiter: block after this many requests in a minute")
    ap.add_argument("--block-seconds", type=float, default=3600.0,
                    help="how long the limiter's block lasts")
    ap.add_argument("--distinct-ids", action="store_true",
                    help="with --any-city, a city not in --cities lists movies of its own")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    fake = FakeDouban(cities=[c for c in args.cities.split(",") if c],
                      default_movies=args.movies, any_city=args.any_city, verbose=args.verbose,
                      distinct_ids=args.distinct_ids)
    fake.set_latency(args.latency_ms)
    fake.set_block_after(args.block_after, args.block_seconds)
    fake.start(args.port)
    print("listening on 127.0.0.1:%d" % fake.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
