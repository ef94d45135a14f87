#!/usr/bin/env python3
"""The seed's sequential scraper, as the asyncio tutorial writes it before asyncio: fetch the
city's coming-soon listing with requests, read its #showing-soon items with BeautifulSoup,
then fetch each movie's own page, one after another, for its poster and details.

    python3 bench/seed/sequential.py BASE_URL CITY    e.g. http://127.0.0.1:8000 beijing

Prints one line per movie and, on stderr, "elapsed SECONDS movies N". BASE_URL stands for
https://movie.douban.com: movie links are followed on it. The tutorial parses with lxml;
html.parser (Python's own) is used here so that only Debian's bs4 is needed.
"""

import sys
import time
from urllib.parse import urlsplit

import requests
from bs4 import BeautifulSoup


def on_base(base, href):
    """A movie link of the listing, moved onto the base URL."""
    return base + urlsplit(href).path


def main(base, city):
    url = "%s/cinema/later/%s/" % (base, city)
    init_page = requests.get(url).content
    init_soup = BeautifulSoup(init_page, "html.parser")
    count = 0
    all_movies = init_soup.find("div", id="showing-soon")
    for each_movie in all_movies.find_all("div", class_="item"):
        all_a_tag = each_movie.find_all("a")
        all_li_tag = each_movie.find_all("li")
        movie_name = all_a_tag[1].text.strip()
        url_to_fetch = on_base(base, all_a_tag[1]["href"])
        movie_date = all_li_tag[0].text
        response_item = requests.get(url_to_fetch).content
        soup_item = BeautifulSoup(response_item, "html.parser")
        img_tag = soup_item.find("div", id="mainpic").find("img")
        info = soup_item.find("div", id="info").get_text(" ", strip=True)
        print("{} {} {} {}".format(movie_name, movie_date, img_tag["src"], info[:60]))
        count += 1
    return count


if __name__ == "__main__":
    t0 = time.perf_counter()
    n = main(sys.argv[1].rstrip("/"), sys.argv[2])
    print("elapsed %.3f movies %d" % (time.perf_counter() - t0, n), file=sys.stderr)
