#!/usr/bin/env python3
"""The seed's asyncio scraper, as the asyncio tutorial writes it: fetch the city's
coming-soon listing with aiohttp, read its #showing-soon items with BeautifulSoup, then fetch
every movie's own page at once (asyncio.gather) and read each for its poster and details.

    python3 bench/seed/asyncio_gather.py BASE_URL CITY    e.g. http://127.0.0.1:8000 beijing

Prints one line per movie and, on stderr, "elapsed SECONDS movies N". BASE_URL stands for
https://movie.douban.com: movie links are followed on it. As in the tutorial, each fetch
opens a session of its own, so nothing bounds how many run at once. The tutorial parses
with lxml; html.parser (Python's own) is used here so that only Debian's bs4 is needed.
"""

import asyncio
import sys
import time
from urllib.parse import urlsplit

import aiohttp
from bs4 import BeautifulSoup

header = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}


def on_base(base, href):
    """A movie link of the listing, moved onto the base URL."""
    return base + urlsplit(href).path


async def fetch_content(url):
    async with aiohttp.ClientSession(headers=header) as session:
        async with session.get(url) as response:
            return await response.text()


async def main(base, city):
    url = "%s/cinema/later/%s/" % (base, city)
    init_page = await fetch_content(url)
    init_soup = BeautifulSoup(init_page, "html.parser")
    movie_names, urls_to_fetch, movie_dates = [], [], []
    all_movies = init_soup.find("div", id="showing-soon")
    for each_movie in all_movies.find_all("div", class_="item"):
        all_a_tag = each_movie.find_all("a")
        all_li_tag = each_movie.find_all("li")
        movie_names.append(all_a_tag[1].text.strip())
        urls_to_fetch.append(on_base(base, all_a_tag[1]["href"]))
        movie_dates.append(all_li_tag[0].text)
    tasks = [fetch_content(url) for url in urls_to_fetch]
    pages = await asyncio.gather(*tasks)
    for movie_name, movie_date, page in zip(movie_names, movie_dates, pages):
        soup_item = BeautifulSoup(page, "html.parser")
        img_tag = soup_item.find("div", id="mainpic").find("img")
        info = soup_item.find("div", id="info").get_text(" ", strip=True)
        print("{} {} {} {}".format(movie_name, movie_date, img_tag["src"], info[:60]))
    return len(pages)


if __name__ == "__main__":
    t0 = time.perf_counter()
    n = asyncio.run(main(sys.argv[1].rstrip("/"), sys.argv[2]))
    print("elapsed %.3f movies %d" % (time.perf_counter() - t0, n), file=sys.stderr)
