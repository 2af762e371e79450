"""Training examples from tool schemas alone.

For each request: a tool (or two, for parallel calls), argument values drawn from each parameter's
enum, type, range, format and description (e.g. "City name, e.g. Tokyo" draws cities), optional
arguments present about half the time, and one of several phrasings that mention every value; a
share of requests need no tool and are answered in plain text. Deterministic per seed. With
`values="train"` or `"test"` the two draw from disjoint halves of every value pool and of the
small talk (even vs odd numbers), so a test split never repeats a training value or question.
Outside a test split, a share of the names, emails, tickers... are invented (`_made_up`).
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import Any

POOLS: dict[str, list[str]] = {
    "city": ["Tokyo", "Paris", "Berlin", "Madrid", "Toronto", "Sydney", "Cairo", "Lima", "Oslo",
             "Seoul", "Nairobi", "Dublin", "Austin", "Lisbon", "Mumbai", "Zurich", "Denver", "Hanoi",
             "Prague", "Boston", "Vienna", "Bangkok", "Chicago", "Athens"],
    "language": ["French", "German", "Spanish", "Italian", "Japanese", "Korean", "Portuguese",
                 "Dutch", "Swedish", "Polish", "Turkish", "Greek", "Hindi", "Arabic"],
    "currency": ["USD", "EUR", "JPY", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "INR", "BRL", "MXN"],
    "symbol": ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "TSLA", "META", "NFLX", "IBM", "INTC",
               "ORCL", "AMD", "SAP", "ADBE"],
    "email": ["alice@example.com", "bob@example.org", "carol@example.net", "dan@example.com",
              "erin@example.org", "frank@example.net", "grace@example.com", "heidi@example.org",
              "ivan@example.net", "judy@example.com", "mallory@example.org", "oscar@example.net"],
    "query": ["best hiking trails near me", "how to repot a cactus", "python list comprehension",
              "history of the printing press", "cheap flights to Rome", "vegan lasagna recipe",
              "how do solar panels work", "latest football scores", "symptoms of the flu",
              "tips for better sleep", "how to tie a bowline knot", "origin of the word robot"],
    "title": ["Team standup", "Dentist appointment", "Lunch with Sam", "Project review",
              "Yoga class", "Budget meeting", "Birthday party", "Car service", "Book club",
              "Interview with Lee", "Parent-teacher meeting", "Quarterly planning"],
    "label": ["pasta", "laundry", "tea", "workout", "meeting", "oven", "nap", "break", "eggs",
              "call mom", "parking", "study"],
    "subject": ["Meeting notes", "Invoice", "Weekend plans", "Quick question", "Report draft",
                "Thank you", "Schedule change", "Trip photos", "Lunch tomorrow", "Contract"],
    "text": ["Good morning", "Where is the train station?", "Thank you very much",
             "I would like a coffee", "See you tomorrow", "How much does this cost?",
             "The meeting is at noon", "Happy birthday", "I am learning to cook",
             "Please call me back", "The weather is lovely", "Where can I buy tickets?"],
    "name": ["Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"],
    "word": ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima"],
}
# More values, appended so every older value keeps its half (the even/odd split below): many
# distinct values teach a small model to copy what the request says rather than recall the few
# values it saw in training (measured: docs/benchmarks.md, "The default recipe").
MORE: dict[str, list[str]] = {
    "city": ["Montreal", "Kyoto", "Havana", "Quito", "Reykjavik", "Tallinn", "Marseille", "Porto",
             "Osaka", "Bogota", "Helsinki", "Krakow", "Santiago", "Accra", "Manila", "Glasgow",
             "Valencia", "Dakar", "Phoenix", "Riga", "Seattle", "Lagos", "Munich", "Tbilisi",
             "Auckland", "Bruges", "Casablanca", "Edinburgh", "Geneva", "Jakarta", "Kampala",
             "Lyon", "Nagoya", "Ottawa", "Perth", "Sapporo", "Tunis", "Utrecht", "Vancouver",
             "Warsaw"],
    "language": ["Finnish", "Czech", "Hungarian", "Romanian", "Vietnamese", "Thai", "Hebrew",
                 "Ukrainian", "Indonesian", "Danish", "Swahili", "Norwegian"],
    "currency": ["CNY", "HKD", "SGD", "NZD", "ZAR", "KRW", "TRY", "PLN", "DKK", "THB", "CZK", "ILS"],
    "symbol": ["CSCO", "CRM", "QCOM", "TXN", "AVGO", "PYPL", "UBER", "SHOP", "SONY", "DIS", "KO",
               "PEP", "WMT", "JPM", "NKE", "SBUX"],
    "email": ["liam.jones@mail.com", "noah@startup.io", "olivia.k@school.edu", "ava@shop.co",
              "mia.lopez@firm.net", "lucas@studio.dev", "zoe.chen@uni.org", "omar@clinic.com",
              "nina.p@agency.io", "theo@garage.net", "lena.w@bakery.com", "raj@lab.org",
              "sofia.r@media.co", "yuki@travel.jp", "tom.baker@farm.net", "ines@design.pt",
              "hugo.m@bank.fr", "maya@gallery.art", "finn.o@port.ie", "sara.n@law.com",
              "kai@surf.au", "emma.j@post.uk", "leo@cafe.it", "anna.s@hotel.de"],
    "query": ["how to start running", "best books of the year", "why is the sky blue",
              "easy bread recipe", "how to learn guitar", "train times to Lyon",
              "how to fix a flat tire", "what causes earthquakes", "museum opening hours",
              "how to plant tomatoes", "healthy breakfast ideas", "how to write a resume",
              "used bikes for sale", "how volcanoes form", "weekend events nearby",
              "how to clean a cast iron pan", "jazz concerts this month", "how to knit a scarf",
              "best budget laptops", "how to make cold brew coffee"],
    "title": ["Coffee with Mia", "Doctor visit", "Team retro", "Piano lesson", "Flight to Oslo",
              "Gym session", "Client call", "Movie night", "Haircut", "Sprint planning",
              "Dinner with parents", "Volunteer shift", "Tax review", "Design workshop",
              "School pickup", "Board meeting"],
    "label": ["rice", "bread", "homework", "meditation", "plants", "coffee", "stretch", "pizza",
              "reading", "dishes", "podcast", "nap time", "cookies", "water the garden", "run",
              "dryer"],
    "subject": ["Project update", "Dinner on Friday", "Holiday plans", "Your order", "Welcome aboard",
                "Next steps", "Budget question", "Team lunch", "New address", "Meeting recap",
                "Happy anniversary", "Feedback request", "Flight details", "Reminder",
                # one-word subjects in both halves: a request writes them unquoted, and a model that
                # saw only quoted subjects reads `subject Reminder and body "…"` as one subject
                "Update", "Invitation", "Receipt", "Agenda", "Question", "Congratulations",
                "Apology", "Announcement"],
    "text": ["Where is the nearest pharmacy?", "I am allergic to nuts", "Can I pay by card?",
             "The bus is late", "Nice to meet you", "I lost my keys", "What time do you open?",
             "Congratulations on the new job", "We need more chairs", "The soup is delicious",
             "Is this seat free?", "Let's meet at the station", "My phone battery is dead",
             "I will arrive at six"],
    "name": ["Kenji", "Lucia", "Marco", "Nadia", "Pavel", "Quinn", "Rosa", "Sven", "Tariq", "Uma",
             "Victor", "Wendy"],
    "word": ["mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
             "victor", "whiskey", "yankee"],
}
for _pool, _more in MORE.items():
    POOLS[_pool] = POOLS[_pool] + _more
# Which pool a parameter draws from, by words in its name or description (first match wins).
KEYWORDS = [("email", "email"), ("e-mail", "email"), ("recipient", "email"), ("city", "city"),
            ("location", "city"), ("place", "city"), ("language", "language"),
            ("currency", "currency"), ("ticker", "symbol"), ("symbol", "symbol"), ("stock", "symbol"),
            ("query", "query"), ("search", "query"), ("title", "title"), ("event", "title"),
            ("label", "label"), ("subject", "subject"), ("body", "text"), ("text", "text"),
            ("message", "text"), ("name", "name")]

NO_TOOL = [
    ("What is 2 plus 2?", "2 plus 2 is 4."),
    ("Say hello!", "Hello! How can I help you today?"),
    ("What color do you get by mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("How many days are in a week?", "A week has 7 days."),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by William Shakespeare."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Thanks for your help!", "You're welcome! Let me know if you need anything else."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("How many legs does a spider have?", "A spider has 8 legs."),
    ("What is the boiling point of water in Celsius?", "Water boils at 100 degrees Celsius at sea level."),
    ("Can you tell me a fun fact?", "Honey never spoils: edible honey has been found in ancient tombs."),
    ("What is 10 divided by 2?", "10 divided by 2 is 5."),
    ("Which planet is known as the red planet?", "Mars is known as the red planet."),
    ("Good night!", "Good night! Sleep well."),
    ("What do bees make?", "Bees make honey and beeswax."),
    ("How many minutes are in an hour?", "An hour has 60 minutes."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
    ("Spell the word cat backwards.", "Cat spelled backwards is tac."),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 degrees Fahrenheit."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("What language is spoken in Brazil?", "Portuguese is the main language of Brazil."),
    ("How are you today?", "I'm doing well, thank you! How can I help?"),
    ("What gas do plants absorb?", "Plants absorb carbon dioxide from the air."),
    ("Name a primary color.", "Red is a primary color."),
    ("What is the tallest animal?", "The giraffe is the tallest animal."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("Can you explain what a noun is?", "A noun is a word that names a person, place, thing or idea."),
    ("What is 7 times 6?", "7 times 6 is 42."),
    ("Which is heavier, a kilo of feathers or a kilo of steel?", "They weigh the same: one kilogram each."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("Who was the first person on the Moon?", "Neil Armstrong was the first person on the Moon."),
    ("How many hours are in a day?", "A day has 24 hours."),
    ("What is the main ingredient of guacamole?", "Avocado is the main ingredient of guacamole."),
    ("Tell me something nice.", "You're doing great, and it's good to hear from you!"),
    ("What is H2O?", "H2O is the chemical formula for water."),
    ("What season comes after winter?", "Spring comes after winter."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
]

NO_TOOL += [  # appended in the same even/odd order: half of them train, half test
    ("Tell me a joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
    ("Write a haiku about autumn.", "Red leaves drift and fall, / cool wind hums through empty trees, / the year breathes out slow."),
    ("What does a thermometer measure?", "A thermometer measures temperature."),
    ("I'm bored. Any ideas?", "You could go for a walk, read a chapter of a book or try a new recipe."),
    ("What is the plural of mouse?", "The plural of mouse is mice."),
    ("Is a tomato a fruit?", "Yes, botanically a tomato is a fruit, though it is cooked like a vegetable."),
    ("How do you say thank you in French?", "Thank you in French is merci."),
    ("Who are you?", "I'm a helpful assistant. I can answer questions and use tools when they are needed."),
    ("What is the past tense of run?", "The past tense of run is ran."),
    ("Which animal is known as the king of the jungle?", "The lion is known as the king of the jungle."),
    ("Give me a word that rhymes with moon.", "Spoon rhymes with moon."),
    ("Why do we need sleep?", "Sleep lets the body and brain recover, store memories and stay healthy."),
    ("What is 15 minus 4?", "15 minus 4 is 11."),
    ("What are you able to do?", "I can answer questions, and call the tools I have been given when a request needs them."),
    ("What is photosynthesis?", "Photosynthesis is how plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("I just got a new puppy!", "Congratulations! Puppies are great company. Have fun together."),
    ("How many strings does a violin have?", "A violin has four strings."),
    ("Is the sun a star?", "Yes, the Sun is a star."),
    ("What is a synonym for happy?", "Joyful is a synonym for happy."),
    ("Which month has the fewest days?", "February has the fewest days."),
    ("Thank you, that's all for now.", "You're welcome! Have a great day."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("Recommend a classic novel.", "Pride and Prejudice by Jane Austen is a wonderful classic."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths."),
    ("What is 3 squared?", "3 squared is 9."),
    ("Hi there!", "Hi! What can I do for you?"),
    ("Do fish sleep?", "Yes, fish rest in a sleep-like state, often while staying still."),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal."),
    ("Can you help me with something?", "Of course! Tell me what you need."),
    ("What does DNA stand for?", "DNA stands for deoxyribonucleic acid."),
    ("Summarize the story of Cinderella in one sentence.", "A kind young woman, helped by her fairy godmother, attends a royal ball and wins the prince's heart."),
    ("How many players are on a soccer team?", "A soccer team has eleven players on the field."),
    ("What's your favorite color?", "I don't have favorites, but many people love blue."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material."),
    ("Good morning!", "Good morning! How can I help you today?"),
    ("How many bones does an adult human have?", "An adult human has 206 bones."),
    ("What is the difference between weather and climate?", "Weather is the day-to-day state of the air; climate is its average over many years."),
    ("Why is the ocean salty?", "Rivers carry dissolved minerals from rocks into the sea, and the salt stays when water evaporates."),
    ("Give me a tip for staying focused.", "Work in short blocks, say 25 minutes, with a short break after each."),
    ("What instrument has 88 keys?", "The piano has 88 keys."),
    ("Can you keep a secret?", "I don't remember conversations once they end, so your secret is safe."),
    ("What is the currency of Japan called?", "The currency of Japan is the yen."),
    ("Are you a robot?", "I'm an AI assistant, a computer program rather than a robot."),
    ("Which bird cannot fly but runs very fast?", "The ostrich cannot fly but runs very fast."),
    ("What is half of 50?", "Half of 50 is 25."),
    ("Who invented the telephone?", "Alexander Graham Bell is credited with inventing the telephone."),
    ("What should I name my goldfish?", "How about Bubbles, Finn or Goldie?"),
    ("How many colors are in a rainbow?", "A rainbow is usually described with seven colors."),
    ("Explain gravity simply.", "Gravity is the pull that masses have on each other; it keeps us on the ground."),
    ("What is the longest river in the world?", "The Nile is usually called the longest river in the world."),
    ("That was helpful, thanks.", "Glad it helped!"),
    ("What is an adjective?", "An adjective is a word that describes a noun, like red or tall."),
    ("How often does a leap year happen?", "A leap year happens every four years, with a few century exceptions."),
    ("What do pandas eat?", "Pandas eat mostly bamboo."),
    ("Tell me a riddle.", "What has keys but can't open locks? A piano."),
    ("What is the speed of light, roughly?", "Light travels at about 300,000 kilometres per second."),
    ("Is it rude to ask someone's age?", "It depends on the culture and the situation; many people prefer not to be asked."),
    ("What is 100 percent of 7?", "100 percent of 7 is 7."),
    ("Which organ pumps blood through the body?", "The heart pumps blood through the body."),
    ("Do you have feelings?", "No, I don't have feelings, but I'm happy to help."),
    ("What is a haiku?", "A haiku is a short Japanese poem of three lines with 5, 7 and 5 syllables."),
    ("How many wheels does a tricycle have?", "A tricycle has three wheels."),
    ("What is the freezing point of water in Celsius?", "Water freezes at 0 degrees Celsius."),
    ("Please be my study buddy.", "Happy to! What are you studying?"),
    ("Where do penguins live?", "Most penguins live in the Southern Hemisphere, many in Antarctica."),
    ("Which way does the sun rise?", "The sun rises in the east."),
    ("What is an island?", "An island is land surrounded by water on all sides."),
    ("What is 9 plus 8?", "9 plus 8 is 17."),
    ("Bye for now!", "Goodbye! Come back any time."),
    ("What are the three states of matter?", "Solid, liquid and gas."),
    ("Suggest a name for a cozy cafe.", "How about The Warm Cup?"),
    ("Who discovered penicillin?", "Alexander Fleming discovered penicillin in 1928."),
    ("What is the main language of Mexico?", "Spanish is the main language of Mexico."),
    ("Why do leaves change color in autumn?", "As days shorten, green chlorophyll breaks down and yellow and red pigments show."),
    ("Describe the color blue to me.", "Blue is the color of a clear sky and deep water: calm and cool."),
    ("How many teeth does an adult usually have?", "An adult usually has 32 teeth."),
    ("I feel a bit sad today.", "I'm sorry to hear that. Would you like to talk about it?"),
    ("What is a verb?", "A verb is a word for an action or a state, like run or be."),
    ("Which is bigger, an elephant or a mouse?", "An elephant is much bigger than a mouse."),
    ("What is the opposite of up?", "The opposite of up is down."),
]

SINGLE = [
    "{Ask}",
    "Please {ask}",
    "Can you {ask}",
    "I need you to {ask}",
    "Could you {ask}",
    "{Ask} Thanks!",
]


def _half(items: list, values: str | None) -> list:
    if values == "train":
        return items[0::2]
    if values == "test":
        return items[1::2]
    return items


def _pool_for(name: str, spec: dict) -> str | None:
    hay = f"{name} {spec.get('description', '')}".lower()
    for word, pool in KEYWORDS:
        if word in name.lower():
            return pool
    for word, pool in KEYWORDS:
        if word in hay:
            return pool
    return None


def _value(rng: random.Random, name: str, spec: dict, values: str | None,
           made_up: float = 0.0) -> Any:
    if "enum" in spec and spec["enum"]:
        return rng.choice(spec["enum"])
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        lo = int(spec.get("minimum", 1))
        hi = int(spec.get("maximum", max(lo + 1, 100 if kind == "integer" else 1000)))
        choices = [v for v in range(lo, hi + 1) if values is None or v % 2 == (values == "test")]
        number = rng.choice(choices or [lo])
        if kind == "number" and rng.random() < 0.3:
            return number + rng.choice([0.25, 0.5, 0.75])
        return number
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        item = spec.get("items", {"type": "string"})
        return [_value(rng, name, item, values, made_up) for _ in range(rng.randint(1, 3))]
    fmt = spec.get("format", "")
    if fmt == "date" or "yyyy-mm-dd" in spec.get("description", "").lower():
        day = date(2027, 1, 1) + timedelta(days=rng.randrange(0, 365))
        while values and day.day % 2 != (values == "test"):  # twice after a 31st
            day += timedelta(days=1)
        return day.isoformat()
    if "hh:mm" in spec.get("description", "").lower() or name.lower() in ("time", "start_time"):
        hours = _half(list(range(7, 21)), values)
        return f"{rng.choice(hours):02d}:{rng.choice(['00', '15', '30', '45'])}"
    pool = "email" if fmt == "email" else _pool_for(name, spec) or "word"
    if made_up and pool in MADE_UP and rng.random() < made_up * MADE_UP[pool]:
        return _made_up(rng, pool)
    return rng.choice(_half(POOLS[pool], values))


# Made-up values (training splits only): a name the model has never seen can only be copied, not
# recalled, which is what a tool call needs; measured on the sample tools, the misses of an
# adapter trained on real names alone were mostly mangled copies (" frank@…", "Judy@…", "BUX").
SYLLABLES = ["ka", "lo", "mi", "ne", "tor", "va", "zen", "qu", "ri", "sel", "bo", "dra", "fi",
             "gu", "hal", "jo", "ny", "pe", "ox", "wy", "tu", "ar", "em", "is"]
FIRST_NAMES = ["adam", "beth", "chris", "diana", "eric", "fiona", "george", "hannah", "isaac",
               "jack", "kate", "laura", "mark", "nora", "oliver", "paula", "rachel", "sam",
               "tina", "ursula", "vera", "will", "xena", "yusuf", "zack", "amir", "bianca",
               "carlos", "dora", "elena", "felix", "gina", "henry", "irene", "james", "kevin",
               "linda", "max", "nick", "otto", "peter", "ruth", "simon", "ulla", "vince",
               "walter", "yvonne", "ben", "clara", "david", "emily", "fred", "julia", "daniel",
               "sophie", "michael", "lisa", "paul", "maria", "john", "kim", "alex", "nathan", "olga",
               "ruby", "leah", "ivy", "mateo", "elsa", "jonas", "lara", "ali", "hana", "marta",
               "igor", "tara", "noel", "rita", "owen", "gwen", "luke", "jade",
               # names whose capitalised form is one token (" Sara") and the lower-case one is not
               # (" s", "ara"), as in SmolLM2's tokenizer: the trap itself
               "aaron", "adrian", "alan", "albert", "amelia", "andre", "andrea", "angela", "anton",
               "arthur", "bella", "bruno", "charles", "colin", "daisy", "dana", "diego", "edgar",
               "edith", "eliza", "ella", "ellen", "eva", "ezra", "gabriel", "hans", "harry",
               "helen", "holly", "ian", "jacob", "jason", "jenny", "jerome", "joan", "joel",
               "jorge", "joseph", "judith", "julian", "june", "karen", "karl", "katie", "keith",
               "kelly", "kurt", "lars", "leon", "lewis", "logan", "lorenzo", "louis", "lucy",
               "luis", "luna", "marcus", "mario", "martha", "melissa", "miguel", "molly", "monica",
               "morgan", "naomi", "neil", "pablo", "pedro", "pierre", "ralph", "rebecca", "robin",
               "ryan", "sally", "samuel", "sandra", "sean", "seth", "sharon", "stefan", "susan",
               "teresa", "thomas", "tony", "troy"]
# pool → how many times `made_up_share` its values are invented: an email on a first
# name is the copy a small model misses most (" Sara" is one token, the request's " s", "ara" two)
MADE_UP = {"city": 1, "name": 1, "word": 1, "label": 1, "email": 3, "symbol": 1, "currency": 1}


def _made_up(rng: random.Random, pool: str) -> str:
    def word(low: int, high: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(low, high)))

    known = {v.lower() for v in POOLS[pool]}
    while True:
        if pool in ("city", "name"):
            value = word(2, 3).capitalize()
        elif pool in ("word", "label"):
            value = word(2, 3)
        elif pool == "email":  # mostly on a common first name: its capitalised form is the trap
            local = rng.choice(FIRST_NAMES) if rng.random() < 0.7 else word(1, 3)
            if rng.random() < 0.4:
                local += rng.choice([".", "_", ""]) + word(1, 2)
            value = f"{local}@{word(2, 3)}.{rng.choice(['com', 'org', 'net', 'io', 'dev', 'eu'])}"
        elif pool == "symbol":
            value = word(2, 3).upper()[:5]
        else:  # currency: three letters
            value = word(2, 2).upper()[:3]
        if value.lower() not in known and len(value) >= 2:
            return value


def _humanize(name: str) -> str:
    return re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)).strip().lower()


def _say(value: Any) -> str:
    """A value as written in a request: multi-word strings quoted so their extent is clear."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and " " in value:
        return f'"{value}"'
    if isinstance(value, list):
        return ", ".join(_say(v) for v in value)
    return str(value)


def _ask(rng: random.Random, tool: dict, args: dict) -> str:
    """A request that names every argument value: '<description> — location Tokyo, unit celsius.'"""
    desc = (tool.get("description") or f"use {_humanize(tool['name'])}").strip().rstrip(".")
    desc = desc[0].lower() + desc[1:]
    parts = [f"{_humanize(k)} {_say(v)}" for k, v in args.items()]
    style = rng.randrange(3)
    if not parts:
        return f"{desc}."
    if style == 0:
        return f"{desc} with {', '.join(parts)}."
    if style == 1:
        return f"{desc}: {'; '.join(parts)}."
    return f"{desc} for {' and '.join(parts)}."


def _args(rng: random.Random, tool: dict, values: str | None, made_up: float) -> dict:
    params = tool["parameters"].get("properties", {})
    required = set(tool["parameters"].get("required", []))
    return {k: _value(rng, k, spec, values, made_up) for k, spec in params.items()
            if k in required or rng.random() < 0.5}


def _phrase(rng: random.Random, ask: str) -> str:
    template = rng.choice(SINGLE)
    return template.replace("{Ask}", ask[0].upper() + ask[1:]).replace("{ask}", ask)


def synthesize(tools: list[dict], n: int, seed: int = 0, values: str | None = None,
               no_tool_share: float = 0.15, parallel_share: float = 0.1,
               made_up_share: float = 0.25) -> list[dict]:
    """`n` flat records ({"input", "output", "tool_calls"}) from normalised tool schemas.
    `made_up_share`: how often a name, city, email, ticker, currency or label is invented rather
    than drawn from a pool (never in a test split)."""
    if not tools:
        raise ValueError("synthesis needs at least one tool")
    rng = random.Random(seed)
    small_talk = _half(NO_TOOL, values)
    records: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(records) < n and attempts < 50 * n:
        attempts += 1  # duplicates are drawn again; a tiny schema may run out of variety
        record = _record(rng, tools, small_talk, values, no_tool_share, parallel_share,
                         0.0 if values == "test" else made_up_share)
        if record["input"] not in seen:
            seen.add(record["input"])
            records.append(record)
    return records


OPENERS = ["", "Hey, ", "Quick question: ", "Hi! ", "Excuse me, ", "One more thing: ",
           "Hello. ", "No tools needed: "]


def _record(rng, tools, small_talk, values, no_tool_share, parallel_share, made_up) -> dict:
    roll = rng.random()
    if roll < no_tool_share:
        question, answer = rng.choice(small_talk)
        opener = rng.choice(OPENERS)
        if opener:
            question = opener + question[0].lower() + question[1:]
        return {"input": question, "output": answer, "tool_calls": []}
    count = 2 if roll < no_tool_share + parallel_share else 1
    chosen = [rng.choice(tools) for _ in range(count)]
    calls, asks = [], []
    for tool in chosen:
        args = _args(rng, tool, values, made_up)
        calls.append({"name": tool["name"], "arguments": args})
        asks.append(_ask(rng, tool, args))
    text = _phrase(rng, asks[0])
    if count == 2:
        text += " Also, " + asks[1]
    return {"input": text, "output": "", "tool_calls": calls}
