"""lbc: a load-balancer configuration compiler and validator."""
__version__ = "0.2.0"

# Where users read about lbc and its rules (SARIF informationUri and helpUri). One place: change it
# here when the repository moves. The rules page has an anchor per rule (#lbc013).
HOME_URL = "https://lbc.invalid/"
DOCS_URL = HOME_URL + "docs/rules.md"
