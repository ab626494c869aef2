"""Docker's random `adjective_surname` names (moby's pkg/namesgenerator): containers and
services without a name get one."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# A subset of moby's pkg/namesgenerator lists: same flavour, same shape of name.
ADJECTIVES = (
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold "
    "boring brave busy charming clever compassionate competent condescending confident cool "
    "cranky crazy dazzling determined distracted dreamy eager ecstatic elastic elated elegant "
    "eloquent epic exciting fervent festive flamboyant focused friendly frosty funny gallant "
    "gifted goofy gracious great happy hardcore heuristic hopeful hungry infallible inspiring "
    "intelligent interesting jolly jovial keen kind laughing loving lucid magical modest musing "
    "mystifying naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic "
    "pensive practical priceless quirky quizzical recursing relaxed reverent romantic sad "
    "serene sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting "
    "unruffled upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous "
    "zen"
).split()

SURNAMES = (
    "agnesi albattani allen almeida antonelli archimedes ardinghelli aryabhata austin babbage "
    "banach bardeen bartik bassi beaver bell benz bhabha bhaskara black blackburn blackwell bohr "
    "booth borg bose bouman boyd brahmagupta brattain brown buck burnell cannon carson cartwright "
    "carver cerf chandrasekhar chaplygin chatelet chatterjee chaum chebyshev clarke cohen colden "
    "cori cray curie curran darwin davinci dewdney dhawan diffie dijkstra dirac driscoll dubinsky "
    "easley edison einstein elbakyan elgamal elion ellis engelbart euclid euler faraday feistel "
    "fermat fermi feynman franklin gagarin galileo galois ganguly gates gauss germain goldberg "
    "goldstine goldwasser golick goodall gould greider grothendieck haibt hamilton haslett "
    "hawking heisenberg hellman hermann herschel hertz heyrovsky hodgkin hofstadter hoover hopper "
    "hugle hypatia ishizaka jackson jang jemison jennings jepsen johnson joliot jones kalam "
    "kapitsa kare keldysh keller kepler khayyam khorana kilby kirch knuth kowalevski lalande "
    "lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov lovelace lumiere "
    "mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren mclean mcnulty meitner "
    "mendel mendeleev meninsky merkle mestorf mirzakhani montalcini moore morse moser murdock "
    "napier nash neumann newton nightingale nobel noether northcutt noyce panini pare pascal "
    "pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan rhodes "
    "ride ritchie robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon "
    "shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker sutherland swanson "
    "swartz swirles taussig tesla tharp thompson torvalds tu turing varahamihira vaughan "
    "villani visvesvaraya volhard wescoff wilbur wiles williams williamson wilson wing wozniak "
    "wright wu yalow yonath zhukovsky"
).split()


def random_name(retry: int = 0) -> str:
    while True:
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
        if name != "boring_wozniak":  # Steve Wozniak is not boring (moby's own rule)
            break
    if retry > 0:
        name = f"{name}{secrets.randbelow(10)}"
    return name


def generate_unique_name(taken: Callable[[str], bool]) -> str:
    """A random name nobody uses; like moby, retry a few times, adding a digit after the first."""
    for attempt in range(100):
        name = random_name(attempt // 3)
        if not taken(name):
            return name
    # Practically unreachable; an id-derived name keeps create from failing.
    return f"berth_{secrets.token_hex(6)}"
