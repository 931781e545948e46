#!/usr/bin/python3
"""Rewrite scikit-learn's bundled toy CSVs as plain CSVs for kaf.

Run by hand, only when the data should be refreshed:

    /usr/bin/python3 core/datasets/convert.py

It reads the files that Debian's python3-sklearn installs under
sklearn/datasets/data/ and writes iris.csv, digits.csv, wine.csv,
boston.csv and breast_cancer.csv next to this script. Each output has one
header row of column names, the features in sklearn's order and a last
column named "target". Data cells are copied as text, untouched, so the
numbers kaf parses are the very digits sklearn ships.

sklearn's own files open with a line "n_rows,n_features,class names..."
instead of column names; this script checks the body against those counts
so that a changed upstream file fails loudly instead of silently.
"""

import csv
import gzip
import io
import os
import sys

import sklearn
import sklearn.datasets as skd

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(skd.__file__), "data")


def header_line(names):
    # csv quotes only names that need it (comma or quote inside).
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(names) + ["target"])
    return buf.getvalue()


def read_text(name):
    path = os.path.join(SRC, name)
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read().decode("ascii")
    with open(path, "rb") as f:
        return f.read().decode("ascii")


def check_body(name, lines, n_rows, n_cols):
    if len(lines) != n_rows:
        sys.exit("%s: %d rows, expected %d" % (name, len(lines), n_rows))
    for i, line in enumerate(lines):
        if line.count(",") + 1 != n_cols:
            sys.exit("%s: row %d has the wrong number of cells" % (name, i))


def split_sklearn(name):
    """Body lines and the (rows, features) counts of sklearn's first line."""
    lines = read_text(name).splitlines()
    first = lines[0].split(",")
    return lines[1:], int(first[0]), int(first[1])


def convert_classic(src, names):
    body, n_rows, n_feat = split_sklearn(src)
    if len(names) != n_feat:
        sys.exit("%s: %d names for %d features" % (src, len(names), n_feat))
    check_body(src, body, n_rows, n_feat + 1)
    return header_line(names) + "\n".join(body) + "\n"


def convert_boston():
    src = "boston_house_prices.csv"
    body, n_rows, n_feat = split_sklearn(src)
    # The second line names the columns; the last one, MEDV, is the target.
    names = next(csv.reader([body[0]]))
    if len(names) != n_feat + 1 or names[-1] != "MEDV":
        sys.exit("%s: unexpected column names %r" % (src, names))
    check_body(src, body[1:], n_rows, n_feat + 1)
    return header_line(names[:-1]) + "\n".join(body[1:]) + "\n"


def convert_digits():
    # No header at all in sklearn's file: 64 pixels of an 8x8 image, then
    # the digit. Names follow sklearn's load_digits().feature_names.
    src = "digits.csv.gz"
    body = read_text(src).splitlines()
    names = ["pixel_%d_%d" % (r, c) for r in range(8) for c in range(8)]
    check_body(src, body, 1797, 65)
    return header_line(names) + "\n".join(body) + "\n"


def main():
    if sklearn.__version__ != "1.2.1":
        print("warning: sklearn %s, SOURCES.md describes 1.2.1"
              % sklearn.__version__, file=sys.stderr)
    outputs = {
        "iris": convert_classic("iris.csv", skd.load_iris().feature_names),
        "digits": convert_digits(),
        "wine": convert_classic("wine_data.csv",
                                skd.load_wine().feature_names),
        "boston": convert_boston(),
        "breast_cancer": convert_classic(
            "breast_cancer.csv", skd.load_breast_cancer().feature_names),
    }
    for name, text in outputs.items():
        path = os.path.join(HERE, name + ".csv")
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
        print(path)


if __name__ == "__main__":
    main()
