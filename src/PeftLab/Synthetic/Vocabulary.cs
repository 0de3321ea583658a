namespace PeftLab.Synthetic;

/// <summary>
/// Word sources for input generators. The instruction suite uses real English words; the pretraining corpus uses
/// pseudo-words with the same letter statistics that never coincide with a suite word, so corpus text cannot repeat a
/// suite input.
/// The fixed tables (colours, animals, number names...) are shared knowledge used by both.
/// </summary>
internal abstract class Vocabulary
{
    /// <summary>A lowercase word of <paramref name="minLen"/>..<paramref name="maxLen"/> letters.</summary>
    public abstract string Word(SplitMix64 rng, int minLen, int maxLen);

    /// <summary>
    /// A number in [lo, hi], for the suite and the corpus alike: numbers are vocabulary, and a corpus text that happens
    /// to repeat a whole suite input (a list, a sequence) is dropped by the corpus's exclusion guard. (Corpus v2 drew
    /// from the next band, [hi + 1, 2 hi - lo + 1], so its bases never did arithmetic on the suite's numbers.)
    /// </summary>
    public abstract int Int(SplitMix64 rng, int lo, int hi);

    /// <summary>A capitalised person name.</summary>
    public abstract string Name(SplitMix64 rng);

    /// <summary>A capitalised city name.</summary>
    public abstract string City(SplitMix64 rng);


    // ---------------------------------------------------------------- shared tables

    public static readonly string[] Colors = ["red", "blue", "green", "yellow", "pink", "brown", "black", "white", "purple", "gray"];
    public static readonly string[] Animals = ["cat", "dog", "cow", "horse", "sheep", "goat", "duck", "pig", "lion", "tiger", "bear", "mouse", "frog", "owl", "fox", "wolf"];
    public static readonly string[] Fruits = ["apple", "pear", "plum", "grape", "lemon", "lime", "peach", "mango", "cherry", "melon", "kiwi", "banana"];

    /// <summary>Colour to fruit table; stated in full in the task definitions that use it.</summary>
    public static readonly (string Key, string Value)[] ColorFruit =
        [("red", "cherry"), ("yellow", "banana"), ("green", "lime"), ("purple", "grape"), ("pink", "peach"), ("brown", "kiwi")];

    /// <summary>Animal to sound table; stated in full in the task definitions that use it.</summary>
    public static readonly (string Key, string Value)[] AnimalSound =
        [("dog", "woof"), ("cat", "meow"), ("cow", "moo"), ("duck", "quack"), ("sheep", "baa"), ("pig", "oink"), ("owl", "hoot"), ("lion", "roar"), ("frog", "croak"), ("horse", "neigh")];

    /// <summary>Pairs of opposites; the mapping goes both ways.</summary>
    public static readonly (string A, string B)[] Opposites =
        [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("old", "new"), ("open", "shut"), ("happy", "sad"), ("early", "late"),
         ("full", "empty"), ("hard", "soft"), ("left", "right"), ("wet", "dry"), ("high", "low"), ("long", "short"), ("rich", "poor"), ("loud", "quiet")];

    public static readonly string[] DigitNames = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    public static readonly string[] Teens = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
    public static readonly string[] Tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    public static readonly string[] Months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

    public static readonly string[] Nato =
        ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima", "mike",
         "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"];

    /// <summary>Generic input words. None may occur in a primitive's sentence templates (checked by the catalog),
    /// or the corpus could not verbalise that primitive without repeating a suite input.</summary>
    public static readonly string[] SuiteWords =
    [
        "able", "acid", "army", "atom", "baby", "back", "bake", "ball", "band", "bank", "barn", "base", "bath", "beach", "bean",
        "bell", "belt", "bench", "blade", "blank", "block", "board", "boat", "body", "bone", "book", "boot", "bottle", "box", "brain",
        "bread", "brick", "bridge", "brush", "bucket", "cabin", "cake", "camp", "candle", "card", "carpet", "cart", "castle", "cave",
        "chain", "chair", "chalk", "cheese", "chest", "chip", "circle", "clock", "cloud", "coast", "coat", "coin", "comb", "corn",
        "couch", "crown", "cup", "curtain", "desk", "dinner", "dish", "door", "drum", "dust", "engine", "face", "farm", "fence",
        "film", "finger", "fire", "flag", "flame", "floor", "flower", "forest", "fork", "frame", "garden", "gate", "gift",
        "glass", "glove", "grass", "hammer", "hand", "harbor", "hat", "heart", "hill", "home", "honey", "hook", "house", "ink",
        "iron", "island", "jacket", "jar", "jelly", "jewel", "kettle", "kitchen", "knife", "ladder", "lake", "lamp", "leaf",
        "lever", "line", "lock", "magnet", "map", "market", "metal", "money", "moon", "motor", "mountain",
        "nail", "needle", "nest", "net", "note", "ocean", "office", "oven", "paint", "paper", "park", "pencil", "piano", "picture",
        "pillow", "pipe", "planet", "plate", "pocket", "pond", "powder", "queen", "rain", "river", "road", "rock", "roof", "room",
        "rope", "sail", "salt", "sand", "school", "screen", "shadow", "shelf", "shell", "ship", "shirt", "shoe", "silver",
        "sink", "sky", "smoke", "snow", "soap", "sock", "sofa", "soup", "spoon", "stair", "star", "stone", "storm",
        "street", "sugar", "tent", "thread", "ticket", "tool", "tower", "town", "toy", "tree", "truck",
        "tunnel", "valley", "vase", "wagon", "wall", "water", "wheel", "window", "wing", "winter", "wire", "wood", "world", "yard",
        "album", "anchor", "arrow", "basket", "button", "canvas", "cotton", "drawer", "ferry", "gravel", "helmet",
        "igloo", "jungle", "kayak", "lantern", "marble", "napkin", "orbit", "puzzle", "quilt", "rocket", "saddle", "tablet",
        "umbrella", "violin", "wallet", "yogurt", "zipper",
        // vowel-initial words, so "starts with a vowel" has enough positive inputs
        "acorn", "anvil", "apron", "attic", "easel", "elbow", "ember", "envelope", "eraser", "inlet", "ivory", "onion",
        "oyster", "ukulele", "atlas", "oasis", "igniter", "outlet", "axle", "usher",
        // longer words
        "backpack", "blanket", "cabinet", "calendar", "campfire", "chimney", "compass", "cupboard", "diamond", "doorbell",
        "eyebrow", "feather", "fireplace", "freezer", "hairbrush", "harvest", "journey", "ketchup", "keyboard", "library",
        "lettuce", "machine", "mailbox", "monster", "mustard", "necklace", "notebook", "orchard", "package", "painter",
        "pancake", "perfume", "pinecone", "plastic", "popcorn", "printer", "pumpkin", "rainbow", "raincoat",
        "sandwich", "scissors", "seashell", "shampoo", "sidewalk", "skeleton", "snowball", "spinach", "stadium", "staircase",
        "sunflower", "sweater", "teacher", "teaspoon", "theater", "thunder", "toolbox", "tornado", "treasure", "trumpet",
        "vampire", "village", "volcano", "wardrobe", "waterfall", "weather", "whistle", "windmill", "workshop",
    ];

    public static readonly string[] SuiteNames =
        ["Anna", "Ben", "Carl", "Dora", "Emma", "Fred", "Gina", "Hugo", "Ida", "Jack", "Kate", "Leo", "Mia", "Nina", "Otto", "Paul", "Rosa", "Sam", "Tina", "Uma", "Vera", "Will", "Yara", "Zoe"];

    public static readonly string[] SuiteCities =
        ["Paris", "Rome", "Oslo", "Cairo", "Delhi", "Tokyo", "Berlin", "Madrid", "Dublin", "Vienna", "Prague", "Sydney", "Quito", "Seoul", "Lagos", "Athens"];

    /// <summary>Every word the tables use (lowercase); suite words must avoid them so that suite inputs stay distinct from table knowledge.</summary>
    public static IReadOnlySet<string> TableWords { get; } = BuildTableWords();

    /// <summary>Every lowercase word the suite may draw (generic words, names, cities, tables); corpus pseudo-words avoid all of them.</summary>
    public static IReadOnlySet<string> Reserved { get; } = BuildReserved();

    private static HashSet<string> BuildTableWords()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        set.UnionWith(Colors); set.UnionWith(Animals); set.UnionWith(Fruits);
        foreach (var (k, v) in ColorFruit) { set.Add(k); set.Add(v); }
        foreach (var (k, v) in AnimalSound) { set.Add(k); set.Add(v); }
        foreach (var (a, b) in Opposites) { set.Add(a); set.Add(b); }
        set.UnionWith(DigitNames); set.UnionWith(Teens); set.UnionWith(Tens.Where(t => t.Length > 0));
        set.UnionWith(Months); set.UnionWith(Nato);
        set.UnionWith(["hundred", "yes", "no", "even", "odd", "animal", "color", "fruit"]);
        return set;
    }

    private static HashSet<string> BuildReserved()
    {
        var set = new HashSet<string>(TableWords, StringComparer.Ordinal);
        set.UnionWith(SuiteWords);
        set.UnionWith(SuiteNames.Select(n => n.ToLowerInvariant()));
        set.UnionWith(SuiteCities.Select(n => n.ToLowerInvariant()));
        return set;
    }

    // Declared after the tables: static initialisers run in textual order and these read the tables.
    public static Vocabulary Suite { get; } = new SuiteVocabulary();
    public static Vocabulary Corpus { get; } = new CorpusVocabulary();

    internal static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private sealed class SuiteVocabulary : Vocabulary
    {
        // Bucketed by length so a length-constrained draw is uniform without rejection loops.
        private readonly string[][] _byLength = BuildBuckets();

        private static string[][] BuildBuckets()
        {
            var clash = SuiteWords.Where(TableWords.Contains).ToArray();
            if (clash.Length > 0)
                throw new InvalidOperationException("internal error: suite words overlap the lookup tables: " + string.Join(", ", clash));
            var distinct = SuiteWords.Distinct(StringComparer.Ordinal).ToArray();
            var buckets = new string[16][];
            for (var len = 0; len < buckets.Length; len++) buckets[len] = distinct.Where(w => w.Length == len).ToArray();
            return buckets;
        }

        public override string Word(SplitMix64 rng, int minLen, int maxLen)
        {
            var total = 0;
            for (var len = minLen; len <= maxLen; len++) total += _byLength[len].Length;
            if (total == 0) throw new InvalidOperationException($"internal error: no suite word has {minLen}..{maxLen} letters");
            var i = rng.Next(total);
            for (var len = minLen; len <= maxLen; len++)
            {
                if (i < _byLength[len].Length) return _byLength[len][i];
                i -= _byLength[len].Length;
            }
            throw new InvalidOperationException("unreachable");
        }

        public override int Int(SplitMix64 rng, int lo, int hi) => rng.Range(lo, hi);
        public override string Name(SplitMix64 rng) => rng.Pick(SuiteNames);
        public override string City(SplitMix64 rng) => rng.Pick(SuiteCities);
    }

    /// <summary>
    /// Pseudo-words drawn from an order-2 letter model of the suite's own words (names and cities included), rejecting
    /// any word the suite could use. They have the suite's letter statistics (every letter, clusters such as "ch" or
    /// "st", double letters), so the tokenizer pieces and the letter operations a base learns on corpus words are the
    /// ones suite words need. Corpus v2 drew strict consonant-vowel words from 14 consonants: c, h, j, q, w, x, y and
    /// pieces such as "nn" never occurred in its question/answer pairs, and its tuned models could not even copy a suite
    /// name ("Anna" came out as "Nnna").
    /// </summary>
    private sealed class CorpusVocabulary : Vocabulary
    {
        private readonly LetterModel _letters = new(Reserved);

        public override string Word(SplitMix64 rng, int minLen, int maxLen)
        {
            for (var attempt = 0; attempt < 1000; attempt++)
            {
                var w = _letters.Draw(rng, maxLen);
                if (w is not null && w.Length >= minLen && !Reserved.Contains(w)) return w;
            }
            throw new InvalidOperationException($"internal error: could not draw a corpus pseudo-word of {minLen}..{maxLen} letters");
        }

        public override int Int(SplitMix64 rng, int lo, int hi) => rng.Range(lo, hi);
        public override string Name(SplitMix64 rng) => Capitalise(Word(rng, 3, 5));
        public override string City(SplitMix64 rng) => Capitalise(Word(rng, 4, 6));
    }

    /// <summary>
    /// An order-2 letter model: the next letter (or the word's end) drawn with the frequency it follows the two before it
    /// in the training words. Built from the words in ordinal order with sorted successors, so draws do not depend on
    /// hash order and are the same in every process.
    /// </summary>
    private sealed class LetterModel
    {
        private const char Edge = '^', End = '$';
        private readonly Dictionary<(char, char), (char[] Next, int[] Cumulative)> _next = [];

        public LetterModel(IEnumerable<string> words)
        {
            var counts = new Dictionary<(char, char), SortedDictionary<char, int>>();
            foreach (var w in words.Where(w => w.Length > 0 && w.All(char.IsAsciiLetterLower)).Order(StringComparer.Ordinal))
            {
                var (a, b) = (Edge, Edge);
                foreach (var c in w.Append(End))
                {
                    if (!counts.TryGetValue((a, b), out var next)) counts[(a, b)] = next = [];
                    next[c] = next.GetValueOrDefault(c) + 1;
                    (a, b) = (b, c);
                }
            }
            foreach (var (context, next) in counts)
            {
                var total = 0;
                _next[context] = (next.Keys.ToArray(), next.Values.Select(n => total += n).ToArray());
            }
        }

        /// <summary>A word of at most <paramref name="maxLen"/> letters, or null when the draw ran longer.</summary>
        public string? Draw(SplitMix64 rng, int maxLen)
        {
            var chars = new List<char>(maxLen);
            var (a, b) = (Edge, Edge);
            while (true)
            {
                var (next, cumulative) = _next[(a, b)];
                var r = rng.Next(cumulative[^1]);
                var c = next[Array.FindIndex(cumulative, n => n > r)];
                if (c == End) return new string(chars.ToArray());
                if (chars.Count == maxLen) return null;
                chars.Add(c);
                (a, b) = (b, c);
            }
        }
    }
}
