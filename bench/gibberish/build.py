#!/usr/bin/env python3
"""Splits the names names.mjs printed (every first and last name of every locale of
@faker-js/faker, MIT) into the sets the `gibberish` condition is made from and measured on.

    build.py NAMES_TSV OUT_DIR [--train]

Writes OUT_DIR/held_out.txt and OUT_DIR/gibberish.txt; with --train, also the trigram counts
and the test samples in the repository.

Names are split in two halves by a hash of the name: the training half becomes the character
trigram counts compiled into the core (crates/core/data/name_trigrams.txt); the held-out half is
where the false-positive rate is measured (OUT_DIR/held_out.txt, all of it, and a few thousand of
them, spread over every locale, in crates/core/tests/data/real_names.txt). Gibberish is generated
with a fixed seed (OUT_DIR/gibberish.txt, and a sample in crates/core/tests/data/gibberish.txt).
"""
import collections
import hashlib
import random
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKER = "@faker-js/faker 10.6.0"
# Word separators: the same as crates/core/src/rules/gibberish.rs (`split_words`).
SEPARATORS = re.compile(r"[\s\-'\u2019.,()/]+")
# Letters that NFD does not decompose, folded by hand for training.
FOLD = {"ß": "ss", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ı": "i", "þ": "th", "ð": "d", "ħ": "h"}


def fold(word):
    word = "".join(FOLD.get(c, c) for c in word.lower())
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


def held_out(name):
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 1


def trigram_table(names):
    """Counts of each trigram over the distinct training words (type counts, so that a common
    name does not weigh more than a rare one); `^` pads the start and `$` marks the end."""
    words = set()
    for name in names:
        for word in SEPARATORS.split(name):
            folded = fold(word)
            if re.fullmatch("[a-z]+", folded):
                words.add(folded)
    counts = collections.Counter()
    for word in words:
        padded = "^^" + word + "$"
        for i in range(len(padded) - 2):
            counts[padded[i : i + 3]] += 1
    return words, counts


# Faker has no Welsh locale, and Welsh spelling ("w" and "y" as vowels, "ll", "dd", "ff") is
# unlike any other Latin-script language's: these common Welsh given names and surnames join the
# training names so that the model knows it.
WELSH = """Aeron Alun Aneirin Aneurin Angharad Arianwen Bethan Bleddyn Bronwen Bryn Brynmor Cadwaladr
Cadfael Carwyn Ceinwen Ceri Cerys Cledwyn Dafydd Delyth Dilwyn Dwynwen Dyfed Eirlys Eluned Emlyn
Emrys Ffion Ffraid Gareth Geraint Gethin Glyndwr Gruffudd Gruffydd Gwen Gwenallt Gwendolen
Gwenllian Gwilym Gwyneth Gwyn Gwynfor Heddwyn Huw Hywel Idris Ieuan Iolo Iorwerth Llewellyn Llinos
Lloyd Llwyd Llywelyn Mabon Madoc Meinir Meirion Meredydd Myfanwy Nia Owain Pryderi Rhiannon
Rhodri Rhydian Rhys Siwan Tegwen Tomos Trefor Tudur Wynne Ynyr Bowen Powell Pugh Prys Parry Bevan
Cadwgan Gwalchmai Llwyfo Maelgwn Cynwyl Dewi Elwyn Eirwyn Glenys Gwladys Mererid""".split()

# Faker's Chinese locales write names in Chinese characters, so Chinese names in Latin script
# (pinyin, "Xiaoyu", "Zhiqiang") would be rare in training: every syllable of Mandarin pinyin,
# as a given name is written (two syllables run together), joins the training names too.
PINYIN = """a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can
cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan
chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di dian
diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fo fou fu ga
gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he
hei hen heng hong hou hu hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong
jiu ju juan jue jun ka kai kan kang kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo
la lai lan lang lao le lei leng li lia lian liang liao lie lin ling liu long lou lu luan lun luo lv
lve ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao
ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu nuan nuo nv nve o ou pa pai pan
pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong
qiu qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo sa sai san sang
sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan shuang
shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting
tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao xie xin
xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai
zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua
zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo""".split()


def pinyin_given_names():
    """Each syllable alone (a surname), and each before a handful of others spread over the list
    (given names): enough to show the model how syllables join, not so many that pinyin
    outweighs the other languages."""
    return PINYIN + [a + b for i, a in enumerate(PINYIN) for b in PINYIN[i % 7 :: 80]]


ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "qwertzuiop", "yxcvbnm"]


def gibberish(rng, count):
    """Names as people type them to get past a form: random letters, runs along a keyboard row,
    repeated syllables, consonant strings, and mashing (a random walk over neighbouring keys)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    consonants = "bcdfghjklmnpqrstvwxz"
    neighbours = collections.defaultdict(set)
    for row in ROWS[:3]:
        for a, b in zip(row, row[1:]):
            neighbours[a].add(b)
            neighbours[b].add(a)
    out = []
    kinds = ["random", "row", "repeat", "consonants", "mash"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "random":
            word = "".join(rng.choice(letters) for _ in range(rng.randint(5, 10)))
        elif kind == "row":
            row = rng.choice(ROWS[:3])
            length = rng.randint(4, min(8, len(row)))
            start = rng.randint(0, len(row) - length)
            word = row[start : start + length]
            if rng.random() < 0.5:
                word = word[::-1]
        elif kind == "repeat":
            unit = "".join(rng.choice(letters) for _ in range(rng.randint(1, 3)))
            word = unit * rng.randint(3, 4)
        elif kind == "consonants":
            word = "".join(rng.choice(consonants) for _ in range(rng.randint(4, 8)))
        else:
            key = rng.choice(letters)
            word = key
            for _ in range(rng.randint(4, 8)):
                key = rng.choice(sorted(neighbours[key] or letters))
                word += key
        out.append(word.capitalize())
    return out


def write(path, header, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in header:
            f.write(("# " + line).rstrip() + "\n")
        for line in lines:
            f.write(line + "\n")


def main():
    names_tsv, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    by_locale = collections.defaultdict(set)
    for line in names_tsv.read_text(encoding="utf-8").splitlines():
        locale, _kind, name = line.split("\t")
        by_locale[locale].add(name)
    names = sorted({n for ns in by_locale.values() for n in ns})
    training = [n for n in names if not held_out(n)] + WELSH + pinyin_given_names()
    testing = [n for n in names if held_out(n)]
    (out_dir / "held_out.txt").write_text("\n".join(testing) + "\n", encoding="utf-8")
    made = gibberish(random.Random(7), 5000)
    (out_dir / "gibberish.txt").write_text("\n".join(made) + "\n", encoding="utf-8")
    print(f"{len(training)} training names, {len(testing)} held out, {len(made)} generated")
    if "--train" not in sys.argv[3:]:
        return
    words, counts = trigram_table(training)
    write(
        ROOT / "crates/core/data/name_trigrams.txt",
        [
            "Character trigram counts of real names, for the `gibberish` condition (rules/gibberish.rs).",
            f"Made by bench/gibberish/run.sh --train from the first and last names of every locale of {FAKER}",
            "(MIT licence), the training half of them (by a hash of the name), Welsh names and pinyin syllables",
            "(faker has no Welsh locale and writes Chinese names in Chinese characters; bench/gibberish/build.py",
            f"lists them), folded to a-z: {len(training)} names, {len(words)} distinct words.",
            "Each line: three characters (`^` before the first letter, `$` after the last) and how many",
            "distinct words hold them.",
        ],
        [f"{t} {c}" for t, c in sorted(counts.items())],
    )
    # A sample spread over the locales: up to 70 held-out names of each.
    rng = random.Random(20261205)
    sample = set()
    for locale in sorted(by_locale):
        mine = sorted(n for n in by_locale[locale] if held_out(n))
        sample.update(rng.sample(mine, min(70, len(mine))))
    write(
        ROOT / "crates/core/tests/data/real_names.txt",
        [
            f"Real names: a sample of the held-out half of the first and last names of {FAKER}",
            f"(MIT licence), up to 70 of each of its {len(by_locale)} locales, made by bench/gibberish/run.sh --train.",
            "None of them was used to train the trigram counts. One name a line.",
        ],
        sorted(sample),
    )
    write(
        ROOT / "crates/core/tests/data/gibberish.txt",
        [
            "Generated gibberish (random letters, keyboard rows, repeated syllables, consonants, mashing),",
            "the first 1000 of bench/gibberish/build.py's, with its fixed seed. One name a line.",
        ],
        made[:1000],
    )
    print(f"wrote {len(counts)} trigrams and a sample of {len(sample)} held-out names")


if __name__ == "__main__":
    main()
