"""Drives Debian's headless Chromium through selenium, as a customer would use the page:

  browser.py subscribe FORM_URL EMAIL COMPONENT   fills the form (only COMPONENT), submits it
  browser.py click URL BUTTON                      opens URL, clicks the button labelled BUTTON

Prints the heading of the page it ends on."""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    action = sys.argv[1]
    driver.get(sys.argv[2])
    # Marks this page, so that the next one is told apart by the marker's absence.
    driver.execute_script("window.__statusmesh_old_page = true")
    if action == "subscribe":
        driver.find_element(By.NAME, "email").send_keys(sys.argv[3])
        driver.find_element(By.CSS_SELECTOR, "input[name=scope][value=some]").click()
        for label in driver.find_elements(By.TAG_NAME, "label"):
            if label.text.strip() == sys.argv[4]:
                label.find_element(By.TAG_NAME, "input").click()
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    elif action == "click":
        buttons = [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == sys.argv[3]]
        if not buttons:
            raise SystemExit(f"no button {sys.argv[3]!r} on {driver.current_url}")
        buttons[0].click()
    # The heading printed is the next page's: wait until a fresh document has loaded (while
    # the browser navigates, a script may fail: that is "not yet").
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__statusmesh_old_page === undefined && document.readyState === 'complete'"
        )
    )
    print(driver.find_element(By.TAG_NAME, "h1").text)
finally:
    driver.quit()
